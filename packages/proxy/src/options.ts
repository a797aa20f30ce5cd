import { parseDuration, parseSize, pathProblem, type Duration, type Size } from '@tollgate/common'
import type { FastifyContextConfig } from 'fastify'
import { InvalidOptionError } from './errors.js'
import { resolveValidation, type RouteValidation, type ValidateOptions } from './validation.js'
import { resolveShaping, type ResponseSchemas, type ResponseShaping } from './shaping.js'
import { resolveHeaderRules, type HeaderRules, type HeaderRulesOptions } from './header-rules.js'
import { compileRewrite, templateParams, type PathTemplate } from './path-template.js'

/** How a target is chosen among an upstream's healthy targets. */
export type BalanceStrategy = 'round-robin' | 'least-connections' | 'random'

/** One target of an upstream: its origin, and its share of the traffic. */
export interface TargetOptions {
  /** `http://host:port` or `https://host:port`, without path, query or credentials. */
  url: string
  /** Relative share of requests (a positive integer). Default `1`. */
  weight?: number
}

/** Active health checking of every target of an upstream. */
export interface HealthCheckOptions {
  /** Path requested with GET; a 2xx answer counts as a success. Example `/health`. */
  path: string
  /** Time between two checks of a target. Default `10s`. */
  interval?: Duration
  /** A check without a complete answer within this time fails. Default `2s`. */
  timeout?: Duration
  /** Consecutive failed checks that mark a healthy target unhealthy. Default `2`. */
  unhealthyAfter?: number
  /** Consecutive passed checks that mark an unhealthy target healthy again. Default `1`. */
  healthyAfter?: number
}

/** Passive ejection of failing targets (Envoy's consecutive-5xx outlier detection). */
export interface CircuitBreakerOptions {
  /** Consecutive failures (connection failure, reset, garbage, timeout, 502/503/504) that open the circuit. Default `5`. */
  failures?: number
  /** How long an open circuit keeps the target out; then one trial request is let through (half-open). Default `30s`. */
  resetAfter?: Duration
}

/** Limits of the WebSocket tunnels to an upstream (routes with `websocket: true`). */
export interface WebSocketOptions {
  /** No byte either way for this long closes the tunnel (1001 going away to both sides). `0` disables. Default `5m`. */
  idleTimeout?: Duration
  /** Largest message (the sum of its fragments) and frame a client may send; larger closes with 1009. Default `1mb`. */
  maxMessageSize?: Size
  /**
   * Most messages a client may send a second on one tunnel (a fragmented message counts
   * once; control frames do not count), as a token bucket: bursts of up to this many, then
   * this many a second. One more closes the client with 1008 and the upstream with 1001.
   * `0` disables. Default `1000`.
   */
  maxMessagesPerSecond?: number
  /** Most tunnels open (or being opened) to the upstream at once; more get 503 with `Retry-After`. Default `10000`. */
  maxConnections?: number
}

/** A named group of interchangeable servers. */
export interface UpstreamOptions {
  /** At least one target: a URL string or `{ url, weight }`. */
  targets: Array<string | TargetOptions>
  /** Default `round-robin`. Weights apply to every strategy. */
  balance?: BalanceStrategy
  /** Per attempt: time from sending the request until the response headers. Past it the client gets 504. Default `30s`. */
  timeout?: Duration
  /** Time to open a TCP (and TLS) connection to a target. Default `5s`. */
  connectTimeout?: Duration
  /** Longest silence between two chunks of a response body before it is cut off. `0` disables it. Default `5m`. */
  bodyTimeout?: Duration
  /**
   * Extra attempts after a connection failure or a reset before the response headers,
   * on another target when there is one. Only for idempotent methods without a request body;
   * never after a timeout, a response or a byte sent to the client. Default `0`.
   */
  retries?: number
  /** Maximum open connections per target. Default `128`. */
  connections?: number
  /** Idle keep-alive connections to a target are closed after this long. Default `4s`. */
  keepAliveTimeout?: Duration
  /** Extra trusted CA certificates (PEM) for https targets. Certificates are always verified. */
  ca?: string | Buffer | Array<string | Buffer>
  healthCheck?: HealthCheckOptions
  circuitBreaker?: CircuitBreakerOptions
  /** WebSocket tunnel limits (idle timeout, message size, message rate, connection cap). */
  websocket?: WebSocketOptions
}

/** One proxied prefix. */
export interface RouteOptions {
  /** Matches `prefix` and `prefix/...` only (never `prefixfoo`). Example `/api/posts`. */
  prefix: string
  /** Name of an entry of `upstreams`. */
  upstream: string
  /** Replaces `prefix` in the path sent upstream. Default `''` (the prefix is removed). */
  rewritePrefix?: string
  /** Methods allowed (GET implies HEAD); others get 405 with `Allow`. Default: every method but TRACE and CONNECT. */
  methods?: string[]
  /** Proxy WebSocket upgrades on this route. Default `false`. */
  websocket?: boolean
  /** Merged into the config of each Fastify route made for this prefix (`auth`, `rateLimit`, `stripCredentials`, ...). */
  config?: FastifyContextConfig & Record<string, unknown>
  /**
   * A path template under `prefix` (`/:id/profile`): the route then matches
   * `prefix + path` only, and captures its params. Segments are literal or `:name`.
   */
  path?: string
  /**
   * The upstream path built from the params `path` captured (`/internal/users/:id/profile`),
   * each percent-encoded. Default: `rewritePrefix + path`. Requires `path`.
   */
  rewrite?: string
  /** Per method: JSON Schemas for `body`, `querystring`, `params` and `headers`; invalid requests get 400. */
  validate?: ValidateOptions
  /** Per status (`200`) or `2xx`: the JSON Schema a JSON answer is reduced to (fast-json-stringify). */
  response?: ResponseSchemas
  /** Largest upstream answer buffered for shaping (inclusive); larger ones pass through untouched. Default `1mb`. */
  responseBufferLimit?: Size
  /** Headers changed on the way to the upstream. */
  requestHeaders?: HeaderRulesOptions
  /** Headers changed on the upstream's answer. */
  responseHeaders?: HeaderRulesOptions
}

export interface ProxyOptions {
  upstreams: Record<string, UpstreamOptions>
  routes: RouteOptions[]
  /** Largest request body forwarded (inclusive); larger gets 413. Default: the app's `bodyLimit`. */
  bodyLimit?: Size
  /** Clock in milliseconds for circuit breakers and deadlines (tests inject a fake one). Default `Date.now`. */
  now?: () => number
  /**
   * Extra header names that `requestHeaders` / `responseHeaders` rules may not touch
   * (the identity headers of @tollgate/auth, say), on top of the built-in protected ones.
   */
  protectedHeaders?: string[]
  /** Start active health checks when the app is ready. Default `true`. */
  healthChecks?: boolean
}

export interface ResolvedTarget {
  readonly url: string
  readonly origin: string
  readonly host: string
  readonly weight: number
}

export interface ResolvedUpstream {
  readonly name: string
  readonly targets: readonly ResolvedTarget[]
  readonly balance: BalanceStrategy
  readonly timeout: number
  readonly connectTimeout: number
  readonly bodyTimeout: number
  readonly retries: number
  readonly connections: number
  readonly keepAliveTimeout: number
  readonly ca: string | Buffer | Array<string | Buffer> | undefined
  readonly healthCheck: Readonly<Required<HealthCheckOptions> & { interval: number, timeout: number }> | null
  readonly circuitBreaker: Readonly<{ failures: number, resetAfter: number }> | null
  readonly websocket: Readonly<{ idleTimeout: number, maxMessageSize: number, maxMessagesPerSecond: number, maxConnections: number }>
}

export interface ResolvedRoute {
  readonly prefix: string
  readonly upstream: string
  readonly rewritePrefix: string
  /** Upper-case methods allowed, HEAD added when GET is listed; `null` when every method is. */
  readonly methods: ReadonlySet<string> | null
  /** The `Allow` header value for a 405. */
  readonly allow: string
  readonly websocket: boolean
  readonly config: Readonly<Record<string, unknown>>
  /** The template under the prefix (`/:id/profile`), or `null` for a plain prefix route. */
  readonly path: string | null
  /** The upstream path of a templated route, or `null` (the prefix is rewritten). */
  readonly rewrite: PathTemplate | null
  readonly validate: RouteValidation | null
  readonly response: ResponseShaping | null
  readonly requestHeaders: HeaderRules | null
  readonly responseHeaders: HeaderRules | null
}

export interface ResolvedOptions {
  readonly upstreams: ReadonlyMap<string, ResolvedUpstream>
  readonly routes: readonly ResolvedRoute[]
  readonly bodyLimit: number
  readonly now: () => number
  readonly healthChecks: boolean
}

/** Every method a proxied route answers (Fastify's own set); TRACE and CONNECT never. */
export const PROXIED_METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY']
const NEVER_METHODS = new Set(['TRACE', 'CONNECT'])
const BALANCES: readonly BalanceStrategy[] = ['round-robin', 'least-connections', 'random']
const UPSTREAM_KEYS = new Set(['targets', 'balance', 'timeout', 'connectTimeout', 'bodyTimeout', 'retries', 'connections', 'keepAliveTimeout', 'ca', 'healthCheck', 'circuitBreaker', 'websocket'])
const ROUTE_KEYS = new Set(['prefix', 'upstream', 'rewritePrefix', 'methods', 'websocket', 'config', 'path', 'rewrite', 'validate', 'response', 'responseBufferLimit', 'requestHeaders', 'responseHeaders'])
const HEALTH_KEYS = new Set(['path', 'interval', 'timeout', 'unhealthyAfter', 'healthyAfter'])
const BREAKER_KEYS = new Set(['failures', 'resetAfter'])
const WEBSOCKET_KEYS = new Set(['idleTimeout', 'maxMessageSize', 'maxMessagesPerSecond', 'maxConnections'])
const TOP_KEYS = new Set(['upstreams', 'routes', 'bodyLimit', 'now', 'healthChecks', 'protectedHeaders'])

function fail (path: string, message: string): never {
  throw new InvalidOptionError(`${path}: ${message}`)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkKeys (value: Record<string, unknown>, known: ReadonlySet<string>, path: string): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) fail(path === '' ? key : `${path}.${key}`, 'unknown key')
  }
}

function integer (value: unknown, path: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail(path, `must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

function duration (value: unknown, path: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  let ms: number
  try {
    ms = parseDuration(value, path)
  } catch {
    fail(path, `invalid duration ${JSON.stringify(value)} (use a number of milliseconds or a string like "250ms", "10s", "1m")`)
  }
  if (ms < min) fail(path, `must be at least ${min} ms`)
  return ms
}

function size (value: unknown, path: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  let bytes: number
  try {
    bytes = parseSize(value, path)
  } catch {
    fail(path, `invalid size ${JSON.stringify(value)} (use a number of bytes or a string like "512kb", "1mb")`)
  }
  if (bytes < min) fail(path, `must be at least ${min} bytes`)
  return bytes
}

function resolveWebSocket (value: unknown, path: string): ResolvedUpstream['websocket'] {
  if (value !== undefined && value !== null && !isObject(value)) fail(path, 'must be an object')
  const ws = isObject(value) ? value : {}
  checkKeys(ws, WEBSOCKET_KEYS, path)
  return Object.freeze({
    idleTimeout: duration(ws.idleTimeout, `${path}.idleTimeout`, 300_000),
    maxMessageSize: size(ws.maxMessageSize, `${path}.maxMessageSize`, 1_048_576, 1),
    maxMessagesPerSecond: integer(ws.maxMessagesPerSecond, `${path}.maxMessagesPerSecond`, 1000, 0),
    maxConnections: integer(ws.maxConnections, `${path}.maxConnections`, 10_000, 1)
  })
}

function resolveTarget (value: unknown, path: string): ResolvedTarget {
  let url: unknown
  let weight: unknown
  if (typeof value === 'string') {
    url = value
  } else if (isObject(value)) {
    checkKeys(value, new Set(['url', 'weight']), path)
    url = value.url
    weight = value.weight
    path = `${path}.url`
  } else {
    fail(path, 'must be a URL string or { url, weight }')
  }
  if (typeof url !== 'string') fail(path, 'must be a URL string')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    fail(path, `invalid URL ${JSON.stringify(url)}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail(path, 'must be an http: or https: URL')
  if (parsed.username !== '' || parsed.password !== '') fail(path, 'must not contain credentials')
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.hash !== '') {
    fail(path, 'must be an origin (scheme://host:port) without path or query; use rewritePrefix for a base path')
  }
  const resolvedWeight = integer(weight, path.replace(/\.url$/, '.weight'), 1, 1)
  return Object.freeze({ url: parsed.origin, origin: parsed.origin, host: parsed.host, weight: resolvedWeight })
}

function resolveUpstream (name: string, value: unknown): ResolvedUpstream {
  const path = `upstreams.${name}`
  if (!isObject(value)) fail(path, 'must be an object with targets')
  checkKeys(value, UPSTREAM_KEYS, path)
  if (!Array.isArray(value.targets) || value.targets.length === 0) fail(`${path}.targets`, 'must be a non-empty list of URLs')
  const targets = value.targets.map((target, i) => resolveTarget(target, `${path}.targets[${i}]`))
  const seen = new Set<string>()
  for (const [i, target] of targets.entries()) {
    if (seen.has(target.origin)) fail(`${path}.targets[${i}]`, `duplicate target ${target.origin}`)
    seen.add(target.origin)
  }
  const balance = value.balance ?? 'round-robin'
  if (!BALANCES.includes(balance as BalanceStrategy)) fail(`${path}.balance`, `must be one of ${BALANCES.join(', ')}`)

  let healthCheck: ResolvedUpstream['healthCheck'] = null
  if (value.healthCheck !== undefined && value.healthCheck !== null) {
    const hc = value.healthCheck
    const hcPath = `${path}.healthCheck`
    if (!isObject(hc)) fail(hcPath, 'must be an object')
    checkKeys(hc, HEALTH_KEYS, hcPath)
    if (typeof hc.path !== 'string' || pathProblem(hc.path) !== null) fail(`${hcPath}.path`, 'must be a normal absolute path like "/health"')
    healthCheck = Object.freeze({
      path: hc.path,
      interval: duration(hc.interval, `${hcPath}.interval`, 10_000, 1),
      timeout: duration(hc.timeout, `${hcPath}.timeout`, 2_000, 1),
      unhealthyAfter: integer(hc.unhealthyAfter, `${hcPath}.unhealthyAfter`, 2, 1),
      healthyAfter: integer(hc.healthyAfter, `${hcPath}.healthyAfter`, 1, 1)
    })
  }

  let circuitBreaker: ResolvedUpstream['circuitBreaker'] = null
  if (value.circuitBreaker !== undefined && value.circuitBreaker !== null) {
    const cb = value.circuitBreaker
    const cbPath = `${path}.circuitBreaker`
    if (!isObject(cb)) fail(cbPath, 'must be an object')
    checkKeys(cb, BREAKER_KEYS, cbPath)
    circuitBreaker = Object.freeze({
      failures: integer(cb.failures, `${cbPath}.failures`, 5, 1),
      resetAfter: duration(cb.resetAfter, `${cbPath}.resetAfter`, 30_000, 1)
    })
  }

  if (value.ca !== undefined && typeof value.ca !== 'string' && !Buffer.isBuffer(value.ca) && !Array.isArray(value.ca)) {
    fail(`${path}.ca`, 'must be a PEM string, a Buffer or a list of them')
  }

  return Object.freeze({
    name,
    targets: Object.freeze(targets),
    balance: balance as BalanceStrategy,
    timeout: duration(value.timeout, `${path}.timeout`, 30_000, 1),
    connectTimeout: duration(value.connectTimeout, `${path}.connectTimeout`, 5_000, 1),
    bodyTimeout: duration(value.bodyTimeout, `${path}.bodyTimeout`, 300_000),
    retries: integer(value.retries, `${path}.retries`, 0, 0),
    connections: integer(value.connections, `${path}.connections`, 128, 1),
    keepAliveTimeout: duration(value.keepAliveTimeout, `${path}.keepAliveTimeout`, 4_000, 1),
    ca: value.ca as ResolvedUpstream['ca'],
    healthCheck,
    circuitBreaker,
    websocket: resolveWebSocket(value.websocket, `${path}.websocket`)
  })
}

function resolvePrefix (value: unknown, path: string, allowEmpty: boolean): string {
  if (typeof value !== 'string') fail(path, 'must be a string')
  if (value === '' && allowEmpty) return ''
  if (!value.startsWith('/')) fail(path, 'must start with "/"')
  if (/[:*?#]/.test(value) || value.includes('%')) fail(path, 'must be a literal path (no ":", "*", "?", "#" or "%")')
  const problem = pathProblem(value)
  if (problem !== null) fail(path, problem)
  // "/api/posts/" and "/api/posts" are the same prefix; "/" is the root.
  return value.endsWith('/') ? value.slice(0, -1) : value
}

function resolveRoute (value: unknown, i: number, upstreams: ReadonlyMap<string, ResolvedUpstream>, protectedHeaders: readonly string[]): ResolvedRoute {
  const path = `routes[${i}]`
  if (!isObject(value)) fail(path, 'must be an object with prefix and upstream')
  checkKeys(value, ROUTE_KEYS, path)
  const prefix = resolvePrefix(value.prefix, `${path}.prefix`, false)
  if (typeof value.upstream !== 'string' || !upstreams.has(value.upstream)) {
    fail(`${path}.upstream`, `unknown upstream ${JSON.stringify(value.upstream)} (known: ${[...upstreams.keys()].join(', ')})`)
  }
  const rewritePrefix = value.rewritePrefix === undefined ? '' : resolvePrefix(value.rewritePrefix, `${path}.rewritePrefix`, true)

  let methods: Set<string> | null = null
  if (value.methods !== undefined) {
    if (!Array.isArray(value.methods) || value.methods.length === 0) fail(`${path}.methods`, 'must be a non-empty list of HTTP methods')
    methods = new Set()
    for (const [j, method] of value.methods.entries()) {
      if (typeof method !== 'string') fail(`${path}.methods[${j}]`, 'must be a string')
      const upper = method.toUpperCase()
      if (NEVER_METHODS.has(upper)) fail(`${path}.methods[${j}]`, `${upper} is never proxied`)
      if (!PROXIED_METHODS.includes(upper)) fail(`${path}.methods[${j}]`, `unsupported method ${JSON.stringify(method)} (use ${PROXIED_METHODS.join(', ')})`)
      methods.add(upper)
    }
    if (methods.has('GET')) methods.add('HEAD')
  }
  if (value.websocket !== undefined && typeof value.websocket !== 'boolean') fail(`${path}.websocket`, 'must be a boolean')
  const websocket = value.websocket === true
  if (websocket && methods !== null && !methods.has('GET')) fail(`${path}.methods`, 'must include GET when websocket is true')
  if (value.config !== undefined && !isObject(value.config)) fail(`${path}.config`, 'must be an object')
  if (value.config !== undefined && 'tollgate' in value.config) fail(`${path}.config.tollgate`, 'is set by the proxy; do not set it')

  let template: string | null = null
  let rewrite: PathTemplate | null = null
  if (value.path !== undefined) {
    const captured = templateParams(value.path, `${path}.path`, false)
    template = value.path as string
    if (template.endsWith('/')) fail(`${path}.path`, 'must not end with "/"')
    rewrite = compileRewrite(value.rewrite === undefined ? `${rewritePrefix}${template}` : value.rewrite as string, `${path}.${value.rewrite === undefined ? 'path' : 'rewrite'}`, captured)
  } else if (value.rewrite !== undefined) {
    fail(`${path}.rewrite`, 'needs a path template to take params from (use rewritePrefix for a plain prefix)')
  }
  const validate = resolveValidation(value.validate, `${path}.validate`, methods, PROXIED_METHODS)
  const response = resolveShaping(value.response, value.responseBufferLimit, `${path}.response`)
  const requestHeaders = resolveHeaderRules(value.requestHeaders, `${path}.requestHeaders`, protectedHeaders)
  const responseHeaders = resolveHeaderRules(value.responseHeaders, `${path}.responseHeaders`, protectedHeaders)
  if (websocket && (template !== null || validate !== null || response !== null || requestHeaders !== null || responseHeaders !== null)) {
    fail(`${path}.websocket`, 'cannot be combined with path, rewrite, validate, response or header rules')
  }

  return Object.freeze({
    prefix,
    upstream: value.upstream,
    rewritePrefix,
    methods,
    allow: (methods === null ? PROXIED_METHODS : PROXIED_METHODS.filter((m) => methods.has(m))).join(', '),
    websocket,
    config: Object.freeze({ ...(value.config ?? {}) }),
    path: template,
    rewrite,
    validate,
    response,
    requestHeaders,
    responseHeaders
  })
}

/**
 * Applies the documented defaults and validates every option, once, at registration.
 * Pure: throws `TOLLGATE_PROXY_INVALID_OPTION` with a message starting with the
 * option's path (`upstreams.posts.retries: must be an integer >= 0, got -1`).
 */
export function resolveOptions (options: unknown, defaults: { bodyLimit: number } = { bodyLimit: 1_048_576 }): ResolvedOptions {
  if (!isObject(options)) fail('options', 'must be an object with upstreams and routes')
  checkKeys(options, TOP_KEYS, '')
  if (!isObject(options.upstreams) || Object.keys(options.upstreams).length === 0) fail('upstreams', 'must name at least one upstream')
  const upstreams = new Map<string, ResolvedUpstream>()
  for (const [name, value] of Object.entries(options.upstreams)) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) fail(`upstreams.${name}`, 'name must use only letters, digits, "_", "." and "-"')
    upstreams.set(name, resolveUpstream(name, value))
  }
  const protectedHeaders = options.protectedHeaders ?? []
  if (!Array.isArray(protectedHeaders) || protectedHeaders.some((name) => typeof name !== 'string')) fail('protectedHeaders', 'must be a list of header names')
  if (!Array.isArray(options.routes)) fail('routes', 'must be a list')
  const routes = options.routes.map((route, i) => resolveRoute(route, i, upstreams, protectedHeaders as string[]))
  const prefixes = new Map<string, number>()
  for (const [i, route] of routes.entries()) {
    // Templated routes share their prefix with each other and with a plain prefix route.
    const key = route.path === null ? route.prefix : `${route.prefix}${route.path}`
    const earlier = prefixes.get(key)
    if (earlier !== undefined) fail(`routes[${i}].${route.path === null ? 'prefix' : 'path'}`, route.path === null ? `duplicate of routes[${earlier}].prefix` : `duplicate of routes[${earlier}]`)
    prefixes.set(key, i)
  }
  let bodyLimit = defaults.bodyLimit
  if (options.bodyLimit !== undefined) {
    try {
      bodyLimit = parseSize(options.bodyLimit, 'bodyLimit')
    } catch {
      fail('bodyLimit', `invalid size ${JSON.stringify(options.bodyLimit)} (use a number of bytes or a string like "512kb", "1mb")`)
    }
  }
  if (options.now !== undefined && typeof options.now !== 'function') fail('now', 'must be a function returning milliseconds')
  if (options.healthChecks !== undefined && typeof options.healthChecks !== 'boolean') fail('healthChecks', 'must be a boolean')
  return Object.freeze({
    upstreams,
    routes: Object.freeze(routes),
    bodyLimit,
    now: (options.now as (() => number) | undefined) ?? Date.now,
    healthChecks: options.healthChecks !== false
  })
}
