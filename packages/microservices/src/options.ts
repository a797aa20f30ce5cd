import build from 'fast-json-stringify'
import { compileRequestSchemas, parseDuration, type Duration, type RequestSchemas, type RequestValidators } from '@tollgate/common'
import type { FastifyContextConfig } from 'fastify'
import { InvalidOptionError } from './errors.js'
import { patternRoute, type Pattern } from './protocol.js'

/** How the gateway reaches a NestJS microservice. */
export type Transport = 'nest-tcp' | 'nest-redis' | 'nest-nats'

/** What a route sends as the message's `data`. */
export type DataSource = 'body' | 'params' | 'query' | 'envelope'

/** A NestJS microservice (or several instances of one) reached over a transport. */
export interface MicroserviceUpstreamOptions {
  /** `nest-tcp` (`Transport.TCP`), `nest-redis` (`Transport.REDIS`) or `nest-nats` (`Transport.NATS`). */
  transport: Transport
  /**
   * `nest-tcp`: one or more `tcp://host:port`, used round-robin (one multiplexed connection each).
   * `nest-redis`: one `redis://[user:password@]host:port[/db]` (or `rediss://`).
   * `nest-nats`: one or more `nats://host:port` (servers of one cluster).
   */
  targets: Array<string | { url: string }>
  /** Time for the whole reply (every packet of a stream); past it the client gets 504 and a late reply is dropped. Default `30s`. */
  timeout?: Duration
  /** Time to connect to a target (TCP) or to the broker. Default `5s`. */
  connectTimeout?: Duration
}

/** One HTTP method and path of a route, mapped to a message pattern or an event pattern. */
export interface PatternOptions {
  /** `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS` (GET also answers HEAD). */
  method: string
  /** Below the route's prefix, with Fastify params: `/`, `/:id`, `/:id/roles`. Default `/` (the prefix itself). */
  path?: string
  /** Request/response: `send(pattern, data)`; the reply is the response. Exactly one of `pattern` and `event`. */
  pattern?: Pattern
  /** Fire and forget: `emit(event, data)`; 202 once the transport took it. */
  event?: Pattern
  /**
   * What goes in `data`: `body` (the JSON body), `params` (path params over the query
   * string), `query` (the query string), or `envelope` (`{ params, query, body, identity, requestId }`).
   * Default `body` for POST, PUT and PATCH, else `params`.
   */
  data?: DataSource
  /** Always answer a JSON array of the reply's values, even for one (for handlers returning streams). Default `false`. */
  array?: boolean
  /** Shown in the OpenAPI document. */
  description?: string
  /**
   * JSON Schemas the request must satisfy before anything is sent: `body`, `querystring`,
   * `params`, `headers`. Invalid requests get 400 listing every problem as `path: message`.
   * Strings are coerced for the check only; `data` carries what the client sent.
   */
  validate?: RequestSchemas
  /**
   * The public shape of the reply, as `{ 200: schema }` (or `2xx`): it is serialised with
   * fast-json-stringify, so only the properties the schema lists reach the client.
   * Only for `pattern` (an event's 202 has no body).
   */
  response?: Record<string, Record<string, unknown>>
}

/** A route prefix whose paths are answered by a microservice. */
export interface MicroserviceRouteOptions {
  /** A literal path, `/api/users`; each pattern's path goes below it. */
  prefix: string
  /** Name of an entry of `upstreams`. */
  upstream: string
  /** Optional: when given, every pattern's method must be listed. */
  methods?: string[]
  patterns: PatternOptions[]
  /** Merged into each Fastify route's `config` (`auth`, `rateLimit`, ... for the other plugins). */
  config?: FastifyContextConfig & Record<string, unknown>
}

export interface MicroservicesOptions {
  upstreams: Record<string, MicroserviceUpstreamOptions>
  routes: MicroserviceRouteOptions[]
}

export interface ResolvedUpstream {
  readonly name: string
  readonly transport: Transport
  readonly targets: readonly string[]
  readonly timeout: number
  readonly connectTimeout: number
}

export interface ResolvedPattern {
  readonly method: string
  /** The Fastify URL: prefix + path (`/api/users/:id`). */
  readonly url: string
  readonly kind: 'pattern' | 'event'
  /** The pattern's route string (NestJS `transformPatternToRoute`): channel, subject and wire pattern. */
  readonly route: string
  readonly data: DataSource
  readonly array: boolean
  readonly description: string | undefined
  /** Compiled `validate`, or `null`. */
  readonly validators: RequestValidators | null
  /** Compiled `response`, or `null` (the reply is sent as the service gave it). */
  readonly serialize: ((value: unknown) => string) | null
}

export interface ResolvedRoute {
  readonly prefix: string
  readonly upstream: string
  readonly patterns: readonly ResolvedPattern[]
  readonly config: Readonly<Record<string, unknown>>
}

export interface ResolvedOptions {
  readonly upstreams: ReadonlyMap<string, ResolvedUpstream>
  readonly routes: readonly ResolvedRoute[]
}

export const TRANSPORTS: readonly Transport[] = ['nest-tcp', 'nest-redis', 'nest-nats']
export const METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const DATA_SOURCES: readonly DataSource[] = ['body', 'params', 'query', 'envelope']
const TOP_KEYS = new Set(['upstreams', 'routes'])
const UPSTREAM_KEYS = new Set(['transport', 'targets', 'timeout', 'connectTimeout'])
const ROUTE_KEYS = new Set(['prefix', 'upstream', 'methods', 'patterns', 'config'])
const PATTERN_KEYS = new Set(['method', 'path', 'pattern', 'event', 'data', 'array', 'description', 'validate', 'response'])
const SCHEMES: Record<Transport, readonly string[]> = { 'nest-tcp': ['tcp:'], 'nest-redis': ['redis:', 'rediss:'], 'nest-nats': ['nats:', 'tls:'] }
const PREFIX = /^(\/[A-Za-z0-9._~!$&'()*+,=:@-]+)*$/
const PATH = /^\/([A-Za-z0-9._~!$&'()*+,=@-]+|:[A-Za-z_][A-Za-z0-9_]*)?(\/([A-Za-z0-9._~!$&'()*+,=@-]+|:[A-Za-z_][A-Za-z0-9_]*))*$/

function fail (path: string, message: string): never {
  throw new InvalidOptionError(`${path}: ${message}`)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkKeys (value: Record<string, unknown>, allowed: ReadonlySet<string>, path: string): void {
  for (const key of Object.keys(value)) if (!allowed.has(key)) fail(`${path}.${key}`, 'unknown option')
}

function duration (value: unknown, fallback: Duration, path: string): number {
  try {
    const ms = parseDuration((value ?? fallback) as Duration, path)
    if (ms <= 0) fail(path, 'must be greater than 0')
    return ms
  } catch (error) {
    if (error instanceof InvalidOptionError) throw error
    fail(path, (error as Error).message.replace(`${path}: `, ''))
  }
}

/** Checks one target URL of a transport; returns it unchanged. */
export function targetProblem (transport: Transport, raw: string): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return `${JSON.stringify(raw)} is not a URL (expected ${SCHEMES[transport][0]}//host:port)`
  }
  if (!SCHEMES[transport].includes(url.protocol)) return `${JSON.stringify(raw)} must use ${SCHEMES[transport].map((s) => s.slice(0, -1)).join(' or ')} for transport ${transport}`
  if (url.hostname === '') return `${JSON.stringify(raw)} has no host`
  if (transport === 'nest-tcp' && url.port === '') return `${JSON.stringify(raw)} needs a port`
  if (transport !== 'nest-redis' && (url.username !== '' || url.password !== '')) return `${JSON.stringify(raw)} must not carry credentials`
  if (transport !== 'nest-redis' && ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '')) return `${JSON.stringify(raw)} must be host:port only`
  return null
}

function patternValue (value: unknown, path: string, depth = 0): void {
  if (typeof value === 'string') {
    if (value.length === 0) fail(path, 'must not be empty')
    return
  }
  if (typeof value === 'number' && Number.isFinite(value)) return
  if (isObject(value) && depth < 5) {
    const keys = Object.keys(value)
    if (keys.length === 0 || keys.length > 20) fail(path, 'an object pattern needs 1 to 20 keys')
    for (const key of keys) {
      const inner = value[key]
      if (typeof inner === 'boolean' || inner === null) continue
      patternValue(inner, `${path}.${key}`, depth + 1)
    }
    return
  }
  fail(path, 'must be a string, a number or an object of those (at most 5 levels deep)')
}

function resolveUpstream (name: string, value: unknown): ResolvedUpstream {
  const at = `upstreams.${name}`
  if (!isObject(value)) fail(at, 'must be an object')
  checkKeys(value, UPSTREAM_KEYS, at)
  const transport = value.transport as Transport
  if (!TRANSPORTS.includes(transport)) fail(`${at}.transport`, `must be one of ${TRANSPORTS.join(', ')}`)
  if (!Array.isArray(value.targets) || value.targets.length === 0) fail(`${at}.targets`, 'must be a non-empty array')
  const targets = value.targets.map((target: unknown, i: number) => {
    const raw = isObject(target) ? target.url : target
    if (typeof raw !== 'string') fail(`${at}.targets[${i}]`, 'must be a URL string')
    const problem = targetProblem(transport, raw)
    if (problem !== null) fail(`${at}.targets[${i}]`, problem)
    return raw
  })
  if (transport === 'nest-redis' && targets.length !== 1) fail(`${at}.targets`, 'a nest-redis upstream has exactly one target (the Redis URL)')
  return Object.freeze({
    name,
    transport,
    targets: Object.freeze(targets),
    timeout: duration(value.timeout, '30s', `${at}.timeout`),
    connectTimeout: duration(value.connectTimeout, '5s', `${at}.connectTimeout`)
  })
}

/**
 * Compiles a pattern's `response` with fast-json-stringify (the serializer Fastify uses for
 * its own response schemas): it writes exactly the properties the schema lists, so fields
 * of the service's internal model never reach the client.
 */
function responseSerializer (value: unknown, kind: 'pattern' | 'event', at: string): (value: unknown) => string {
  if (kind === 'event') fail(at, 'an event is answered 202 with no body; only a pattern\'s reply can be shaped')
  if (!isObject(value)) fail(at, 'must be an object with one schema under 200 (or 2xx)')
  const statuses = Object.keys(value)
  if (statuses.length !== 1 || (statuses[0] !== '200' && statuses[0] !== '2xx')) fail(at, 'must hold exactly one schema, under 200 (or 2xx): a reply is answered 200')
  const schema = value[statuses[0]!]
  if (!isObject(schema)) fail(`${at}.${statuses[0]!}`, 'must be a JSON Schema object')
  try {
    return build(schema as never) as (value: unknown) => string
  } catch (error) {
    fail(`${at}.${statuses[0]!}`, `invalid response schema (${(error as Error).message})`)
  }
}

function resolvePattern (value: unknown, prefix: string, methods: ReadonlySet<string> | null, at: string): ResolvedPattern {
  if (!isObject(value)) fail(at, 'must be an object')
  checkKeys(value, PATTERN_KEYS, at)
  const method = typeof value.method === 'string' ? value.method.toUpperCase() : undefined
  if (method === undefined || !METHODS.includes(method)) fail(`${at}.method`, `must be one of ${METHODS.join(', ')}`)
  if (methods !== null && !methods.has(method)) fail(`${at}.method`, `${method} is not in the route's methods`)
  const path = value.path ?? '/'
  if (typeof path !== 'string' || !PATH.test(path) || path.split('/').some((s) => s === '.' || s === '..')) fail(`${at}.path`, 'must be a path like /, /:id or /:id/roles (literal segments and :params)')
  const hasPattern = value.pattern !== undefined
  const hasEvent = value.event !== undefined
  if (hasPattern === hasEvent) fail(at, 'set exactly one of pattern and event')
  const kind = hasPattern ? 'pattern' : 'event'
  patternValue(value[kind], `${at}.${kind}`)
  const data = value.data ?? (['POST', 'PUT', 'PATCH'].includes(method) ? 'body' : 'params')
  if (!DATA_SOURCES.includes(data as DataSource)) fail(`${at}.data`, `must be one of ${DATA_SOURCES.join(', ')}`)
  if (value.array !== undefined && typeof value.array !== 'boolean') fail(`${at}.array`, 'must be a boolean')
  if (value.description !== undefined && typeof value.description !== 'string') fail(`${at}.description`, 'must be a string')
  const validators = value.validate === undefined ? null : compileRequestSchemas(value.validate, method, `${at}.validate`, InvalidOptionError)
  const serialize = value.response === undefined ? null : responseSerializer(value.response, kind, `${at}.response`)
  return Object.freeze({
    method,
    url: path === '/' ? (prefix === '' ? '/' : prefix) : `${prefix}${path}`,
    kind,
    route: patternRoute(value[kind]),
    data: data as DataSource,
    array: value.array === true,
    description: value.description as string | undefined,
    validators,
    serialize
  })
}

/**
 * Validates the plugin's options, applies the documented defaults and freezes the
 * result. Throws `InvalidOptionError` naming the option (`routes[0].patterns[1].path: ...`).
 */
export function resolveOptions (options: MicroservicesOptions): ResolvedOptions {
  if (!isObject(options)) fail('options', 'must be an object')
  checkKeys(options, TOP_KEYS, 'options')
  if (!isObject(options.upstreams)) fail('upstreams', 'must be an object')
  const upstreams = new Map<string, ResolvedUpstream>()
  for (const [name, value] of Object.entries(options.upstreams)) upstreams.set(name, resolveUpstream(name, value))
  if (!Array.isArray(options.routes)) fail('routes', 'must be an array')
  const seen = new Map<string, string>()
  const routes = options.routes.map((route: unknown, i: number): ResolvedRoute => {
    const at = `routes[${i}]`
    if (!isObject(route)) fail(at, 'must be an object')
    checkKeys(route, ROUTE_KEYS, at)
    if (typeof route.prefix !== 'string' || !PREFIX.test(route.prefix)) fail(`${at}.prefix`, 'must be a path like /api/users (or "" for the root)')
    if (route.prefix.split('/').some((s) => s === '.' || s === '..')) fail(`${at}.prefix`, 'must not contain dot segments')
    if (typeof route.upstream !== 'string' || !upstreams.has(route.upstream)) {
      fail(`${at}.upstream`, `unknown upstream ${JSON.stringify(route.upstream)} (known: ${[...upstreams.keys()].join(', ')})`)
    }
    let methods: Set<string> | null = null
    if (route.methods !== undefined) {
      if (!Array.isArray(route.methods) || route.methods.length === 0 || route.methods.some((m) => typeof m !== 'string')) fail(`${at}.methods`, 'must be a non-empty array of method names')
      methods = new Set((route.methods as string[]).map((m) => m.toUpperCase()))
    }
    if (!Array.isArray(route.patterns) || route.patterns.length === 0) fail(`${at}.patterns`, 'must be a non-empty array')
    const patterns = route.patterns.map((pattern: unknown, j: number) => resolvePattern(pattern, route.prefix as string, methods, `${at}.patterns[${j}]`))
    for (const [j, pattern] of patterns.entries()) {
      // `/:id` and `/:name` are the same route to Fastify.
      const key = `${pattern.method} ${pattern.url.replace(/:[A-Za-z0-9_]+/g, ':')}`
      const first = seen.get(key)
      if (first !== undefined) fail(`${at}.patterns[${j}]`, `${pattern.method} ${pattern.url} is already mapped by ${first}`)
      seen.set(key, `${at}.patterns[${j}]`)
    }
    if (route.config !== undefined && !isObject(route.config)) fail(`${at}.config`, 'must be an object')
    return Object.freeze({
      prefix: route.prefix,
      upstream: route.upstream,
      patterns: Object.freeze(patterns),
      config: Object.freeze({ ...(route.config ?? {}) })
    })
  })
  return Object.freeze({ upstreams, routes: Object.freeze(routes) })
}
