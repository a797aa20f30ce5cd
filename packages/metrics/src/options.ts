import type { Registry } from 'prom-client'
import { InvalidOptionError } from './errors.js'

/**
 * Histogram buckets in seconds, from 0.5 ms to 10 s: a gateway's own overhead lives in
 * the first buckets, upstream latency and timeouts in the last ones.
 */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
])

/** Options of the `@tollgate/metrics` plugin. */
export interface TollgateMetricsOptions {
  /**
   * Path of the Prometheus text exposition, or `false` to serve none (read
   * `app.tollgateMetrics.registry` yourself). Served on the app with route config
   * `{ auth: false, rateLimit: false, metrics: false }`, or on the separate listener
   * when `port` is set.
   * @default '/metrics'
   */
  path?: string | false
  /**
   * Serve the exposition on a separate internal listener on this port instead of the
   * app (`0` picks a free one; see `app.tollgateMetrics.address()`). It starts with
   * `app.ready()` and closes with the app.
   * @default undefined (served on the app)
   */
  port?: number
  /**
   * Host of the separate listener (only with `port`).
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * The prom-client registry to register the metrics in.
   * @default a new Registry per app (never prom-client's global one)
   */
  registry?: Registry
  /**
   * Also collect prom-client's default process metrics (CPU, memory, event loop lag, GC...).
   * @default true
   */
  defaultMetrics?: boolean
  /**
   * Log one line per completed request (`request completed`, at `info`; at `debug`
   * for routes with `config.metrics: false`).
   * @default true
   */
  requestLogs?: boolean
  /**
   * Response header that echoes `request.id` on every response (404s and errors
   * included), or `false` for none.
   * @default 'x-request-id'
   */
  requestIdHeader?: string | false
  /**
   * Buckets (seconds, strictly increasing) of the two duration histograms.
   * @default DEFAULT_BUCKETS (0.5 ms .. 10 s)
   */
  buckets?: readonly number[]
}

/** The options after defaults and validation. */
export interface ResolvedOptions {
  readonly path: string | false
  readonly port: number | undefined
  readonly host: string
  readonly registry: Registry | undefined
  readonly defaultMetrics: boolean
  readonly requestLogs: boolean
  readonly requestIdHeader: string | false
  readonly buckets: readonly number[]
}

const KNOWN_KEYS = new Set([
  'path', 'port', 'host', 'registry', 'defaultMetrics', 'requestLogs', 'requestIdHeader', 'buckets',
  // Fastify's own register() options
  'prefix', 'logLevel', 'logSerializers'
])

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/

function isRegistry (value: unknown): value is Registry {
  if (typeof value !== 'object' || value === null) return false
  const candidate = value as Partial<Record<'registerMetric' | 'metrics' | 'getSingleMetric', unknown>>
  return typeof candidate.registerMetric === 'function' &&
    typeof candidate.metrics === 'function' &&
    typeof candidate.getSingleMetric === 'function'
}

function fail (message: string): never {
  throw new InvalidOptionError(message)
}

function boolOption (options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(`${name} must be a boolean (got ${JSON.stringify(value)})`)
  return value
}

/**
 * Applies the documented defaults and validates the plugin options. Pure: throws an
 * `InvalidOptionError` (TOLLGATE_METRICS_INVALID_OPTION) naming the option on a bad one.
 */
export function resolveOptions (input: TollgateMetricsOptions | undefined = {}): ResolvedOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('options must be an object')
  const options = input as Record<string, unknown>
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) fail(`${key}: unknown option (known: ${[...KNOWN_KEYS].slice(0, 8).join(', ')})`)
  }

  let path: string | false = '/metrics'
  if (options.path !== undefined) {
    const value = options.path
    if (value !== false && (typeof value !== 'string' || !value.startsWith('/') || /[\s?#]/.test(value))) {
      fail(`path must be false or a path starting with "/" without a query (got ${JSON.stringify(value)})`)
    }
    path = value
  }

  let port: number | undefined
  if (options.port !== undefined) {
    const value = options.port
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
      fail(`port must be an integer from 0 to 65535 (got ${JSON.stringify(value)})`)
    }
    if (path === false) fail('port is set but path is false: give the path to serve on that port')
    port = value
  }

  let host = '127.0.0.1'
  if (options.host !== undefined) {
    if (typeof options.host !== 'string' || options.host.length === 0) fail(`host must be a non-empty string (got ${JSON.stringify(options.host)})`)
    if (port === undefined) fail('host is only meaningful with port (the separate metrics listener)')
    host = options.host
  }

  let registry: Registry | undefined
  if (options.registry !== undefined) {
    if (!isRegistry(options.registry)) fail('registry must be a prom-client Registry')
    registry = options.registry
  }

  let requestIdHeader: string | false = 'x-request-id'
  if (options.requestIdHeader !== undefined) {
    const value = options.requestIdHeader
    if (value !== false && (typeof value !== 'string' || !HEADER_NAME.test(value.toLowerCase()))) {
      fail(`requestIdHeader must be false or a header name (got ${JSON.stringify(value)})`)
    }
    requestIdHeader = value === false ? false : value.toLowerCase()
  }

  let buckets: readonly number[] = DEFAULT_BUCKETS
  if (options.buckets !== undefined) {
    const value = options.buckets
    if (!Array.isArray(value) || value.length === 0) fail('buckets must be a non-empty array of seconds')
    let previous = 0
    for (const [index, bucket] of (value as unknown[]).entries()) {
      if (typeof bucket !== 'number' || !Number.isFinite(bucket) || bucket <= previous) {
        fail(`buckets[${index}] must be a finite number of seconds greater than the one before it (got ${JSON.stringify(bucket)})`)
      }
      previous = bucket
    }
    buckets = Object.freeze([...(value as number[])])
  }

  return Object.freeze({
    path,
    port,
    host,
    registry,
    defaultMetrics: boolOption(options, 'defaultMetrics', true),
    requestLogs: boolOption(options, 'requestLogs', true),
    requestIdHeader,
    buckets
  })
}
