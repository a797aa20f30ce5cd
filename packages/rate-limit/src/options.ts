import { parseDuration, type Duration } from '@tollgate/common'
import { InvalidOptionError, InvalidRouteConfigError } from './errors.js'

/** How requests are counted; see the README for the exact semantics of each. */
export type Algorithm = 'fixed-window' | 'sliding-window' | 'token-bucket'

/**
 * What a bucket is keyed by, within a route:
 * - `ip`: the client IP (`request.ip`: the socket peer unless Fastify's `trustProxy` trusts it);
 *   IPv6 addresses are grouped by their `/ipv6Subnet` prefix.
 * - `user`: the identity verified by @tollgate/auth (`request.tollgateIdentity.id`), else the IP.
 * - `apiKey`: a hash of the API key header (`apiKeyHeader`), else the IP.
 * - `header:<name>`: a hash of that request header, else the IP.
 */
export type KeyBy = 'ip' | 'user' | 'apiKey' | `header:${string}`

/** A limit, as written in the plugin's `default` or a route's `config.rateLimit`. */
export interface RateLimitRule {
  /** Requests admitted per `window` (the bucket's capacity for `token-bucket`). A non-negative integer; `0` refuses every request. */
  max: number
  /** The window: milliseconds, or `"250ms"`, `"10s"`, `"1m"`, `"1h"`, `"1d"`. */
  window: Duration
  /** @default 'ip' */
  by?: KeyBy
  /** @default the plugin's `algorithm` */
  algorithm?: Algorithm
}

/**
 * The part of an ioredis client that the limiter uses: any ioredis 5 or 6 client (such as
 * `app.redis` from @fastify/redis) fits, whichever copy of ioredis made it. Typed by shape,
 * not as ioredis's `Redis` class, because two majors' classes are not assignable to each other.
 */
export interface RedisClientLike {
  /** ioredis's connection state; commands are sent only while it is `'ready'`. */
  readonly status: string
  /** The client's own settings: `commandTimeout` (ms) and `enableOfflineQueue` are read. */
  readonly options: { readonly commandTimeout?: number | undefined, readonly enableOfflineQueue?: boolean | undefined }
  /** Where the limiter's Lua scripts are defined (then called as `client[name](key, ...args, callback)`). */
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
  /** The readiness check. */
  ping (): Promise<unknown>
  on (event: 'error', listener: (error: Error) => void): unknown
  off (event: 'error', listener: (error: Error) => void): unknown
}

/** Where the limiter keeps its counts when they are shared between instances. */
export interface RedisStoreOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://...`. The plugin makes, owns and closes this client. */
  url?: string
  /**
   * An existing ioredis client, version 5 or 6 (for example `app.redis` from @fastify/redis).
   * The plugin never closes it. Give it `enableOfflineQueue: false`; the plugin applies
   * `commandTimeout` itself.
   */
  client?: RedisClientLike
  /** Prefix of every key the limiter writes. @default 'tollgate:' */
  keyPrefix?: string
  /** Longest wait for one Redis answer before `onStoreError` applies. At most 250 ms by default. @default '250ms' */
  commandTimeout?: Duration
  /** Longest wait for a (re)connection attempt (own client only). @default '1s' */
  connectTimeout?: Duration
}

/** Options of the `@tollgate/rate-limit` plugin. */
export interface TollgateRateLimitOptions {
  /** Algorithm of every rule that does not name its own. @default 'fixed-window' */
  algorithm?: Algorithm
  /**
   * The rule of routes without `config.rateLimit`. Without it such routes are not limited.
   * Routes with `config.rateLimit: false` are never limited.
   * @default undefined
   */
  default?: RateLimitRule | false
  /**
   * What to do when the store (Redis) fails or times out: `'allow'` admits the request (fail
   * open; logged once per `errorLogInterval` and counted through the `storeError` event),
   * `'deny'` answers 503 with `Retry-After` (fail closed).
   * @default 'allow'
   */
  onStoreError?: 'allow' | 'deny'
  /** Share counts through Redis (options, or an ioredis 5 or 6 client). Without it counts are kept in memory. */
  redis?: RedisStoreOptions | RedisClientLike
  /** Header carrying the API key, for `by: 'apiKey'`. @default 'x-api-key' */
  apiKeyHeader?: string
  /** `Retry-After` of the 503 sent under `onStoreError: 'deny'`. @default '5s' */
  storeErrorRetryAfter?: Duration
  /** Store failures are logged at most once per this interval (with the number suppressed). @default '10s' */
  errorLogInterval?: Duration
  /** IPv6 clients are keyed by this prefix length: one /64 is one client. @default 64 */
  ipv6Subnet?: number
  /** Most buckets the in-memory store keeps (oldest dropped first). @default 100000 */
  maxKeys?: number
  /**
   * Clock in epoch milliseconds (tests inject one). When it is not set and Redis is used,
   * Redis's own clock (`TIME`) decides, so instances with skewed clocks agree.
   * @default Date.now
   */
  now?: () => number
}

/** A validated rule. */
export interface ResolvedRule {
  readonly max: number
  readonly windowMs: number
  readonly algorithm: Algorithm
  readonly by: 'ip' | 'user' | 'apiKey' | 'header'
  /** Lower-cased header name for `apiKey` and `header:<name>`, else `null`. */
  readonly header: string | null
}

export interface ResolvedRedis {
  readonly url: string | null
  readonly client: RedisClientLike | null
  readonly keyPrefix: string
  readonly commandTimeoutMs: number
  readonly connectTimeoutMs: number
}

export interface ResolvedOptions {
  readonly algorithm: Algorithm
  readonly default: ResolvedRule | null
  readonly onStoreError: 'allow' | 'deny'
  readonly redis: ResolvedRedis | null
  readonly apiKeyHeader: string
  readonly storeErrorRetryAfterSeconds: number
  readonly errorLogIntervalMs: number
  readonly ipv6Subnet: number
  readonly maxKeys: number
  readonly now: (() => number) | null
}

const ALGORITHMS: ReadonlySet<string> = new Set(['fixed-window', 'sliding-window', 'token-bucket'])
const OPTION_KEYS: ReadonlySet<string> = new Set([
  'algorithm', 'default', 'onStoreError', 'redis', 'apiKeyHeader', 'storeErrorRetryAfter',
  'errorLogInterval', 'ipv6Subnet', 'maxKeys', 'now'
])
const RULE_KEYS: ReadonlySet<string> = new Set(['max', 'window', 'by', 'algorithm'])
const REDIS_KEYS: ReadonlySet<string> = new Set(['url', 'client', 'keyPrefix', 'commandTimeout', 'connectTimeout'])
// RFC 9110 token characters: a header name.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Keeps `max * window` (the token bucket's scaled capacity) exact in IEEE doubles, in JS and in Lua. */
const MAX_PRODUCT = Number.MAX_SAFE_INTEGER
/** Fastify/Node's `fastify-plugin` options that may ride along with ours. */
const FASTIFY_REGISTER_KEYS: ReadonlySet<string> = new Set(['prefix', 'logLevel', 'logSerializers'])

type Fail = (message: string) => Error

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkKeys (value: Record<string, unknown>, allowed: ReadonlySet<string>, path: string, fail: Fail, extra?: ReadonlySet<string>): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key) && extra?.has(key) !== true) throw fail(`${path}${key}: unknown key`)
  }
}

/** True when `value` looks like an ioredis client (duck-typed, so a second copy of ioredis works too). */
export function isRedisClient (value: unknown): value is RedisClientLike {
  return typeof value === 'object' && value !== null &&
    typeof (value as { defineCommand?: unknown }).defineCommand === 'function' &&
    typeof (value as { status?: unknown }).status === 'string'
}

function duration (value: unknown, path: string, fail: Fail): number {
  try {
    return parseDuration(value, path)
  } catch (error) {
    throw fail((error as Error).message)
  }
}

function resolveRule (value: unknown, path: string, algorithm: Algorithm, apiKeyHeader: string, fail: Fail): ResolvedRule {
  if (!isPlainObject(value)) throw fail(`${path}: must be false or an object like { max: 100, window: '1m', by: 'ip' }`)
  checkKeys(value, RULE_KEYS, `${path}.`, fail)
  const { max, window, by = 'ip' } = value
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 0) {
    throw fail(`${path}.max: must be a non-negative integer`)
  }
  if (window === undefined) throw fail(`${path}.window: is required (for example "1m")`)
  const windowMs = duration(window, `${path}.window`, fail)
  if (windowMs < 1) throw fail(`${path}.window: must be at least 1 ms`)
  if (max * windowMs > MAX_PRODUCT) throw fail(`${path}: max × window (in ms) must not exceed ${MAX_PRODUCT}`)
  let ruleAlgorithm = algorithm
  if (value.algorithm !== undefined) {
    if (typeof value.algorithm !== 'string' || !ALGORITHMS.has(value.algorithm)) {
      throw fail(`${path}.algorithm: must be one of fixed-window, sliding-window, token-bucket`)
    }
    ruleAlgorithm = value.algorithm as Algorithm
  }
  if (by === 'ip' || by === 'user') return Object.freeze({ max, windowMs, algorithm: ruleAlgorithm, by, header: null })
  if (by === 'apiKey') return Object.freeze({ max, windowMs, algorithm: ruleAlgorithm, by, header: apiKeyHeader })
  if (typeof by === 'string' && by.startsWith('header:')) {
    const name = by.slice('header:'.length)
    if (!HEADER_NAME.test(name)) throw fail(`${path}.by: "${by}" does not name a valid header`)
    return Object.freeze({ max, windowMs, algorithm: ruleAlgorithm, by: 'header', header: name.toLowerCase() })
  }
  throw fail(`${path}.by: must be ip, user, apiKey or header:<name> (got ${JSON.stringify(by)})`)
}

function resolveRedis (value: unknown, fail: Fail): ResolvedRedis | null {
  if (value === undefined || value === null) return null
  if (isRedisClient(value)) {
    return Object.freeze({ url: null, client: value, keyPrefix: 'tollgate:', commandTimeoutMs: 250, connectTimeoutMs: 1000 })
  }
  if (!isPlainObject(value)) throw fail('redis: must be an object { url, keyPrefix, commandTimeout } or an ioredis client')
  checkKeys(value, REDIS_KEYS, 'redis.', fail)
  const { url, client, keyPrefix = 'tollgate:', commandTimeout = 250, connectTimeout = 1000 } = value
  if (client !== undefined && !isRedisClient(client)) throw fail('redis.client: must be an ioredis client')
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\/./.test(url))) {
    throw fail('redis.url: must be a redis:// or rediss:// URL')
  }
  if (url !== undefined && client !== undefined) throw fail('redis: give either url or client, not both')
  if (url === undefined && client === undefined) throw fail('redis: url or client is required')
  if (typeof keyPrefix !== 'string' || keyPrefix.length > 64) throw fail('redis.keyPrefix: must be a string of at most 64 characters')
  const commandTimeoutMs = duration(commandTimeout, 'redis.commandTimeout', fail)
  if (commandTimeoutMs < 1) throw fail('redis.commandTimeout: must be at least 1 ms')
  const connectTimeoutMs = duration(connectTimeout, 'redis.connectTimeout', fail)
  if (connectTimeoutMs < 1) throw fail('redis.connectTimeout: must be at least 1 ms')
  return Object.freeze({
    url: (url as string | undefined) ?? null,
    client: (client as RedisClientLike | undefined) ?? null,
    keyPrefix,
    commandTimeoutMs,
    connectTimeoutMs
  })
}

/**
 * Applies the documented defaults to the plugin options and validates them. Pure: throws an
 * `InvalidOptionError` whose message starts with the path of the offending option.
 */
export function resolveOptions (options: TollgateRateLimitOptions = {}): ResolvedOptions {
  const fail: Fail = (message) => new InvalidOptionError(message)
  if (!isPlainObject(options)) throw fail('options: must be an object')
  checkKeys(options, OPTION_KEYS, '', fail, FASTIFY_REGISTER_KEYS)
  const raw = options as Record<string, unknown>

  const algorithm = raw.algorithm ?? 'fixed-window'
  if (typeof algorithm !== 'string' || !ALGORITHMS.has(algorithm)) {
    throw fail('algorithm: must be one of fixed-window, sliding-window, token-bucket')
  }
  const apiKeyHeader = raw.apiKeyHeader ?? 'x-api-key'
  if (typeof apiKeyHeader !== 'string' || !HEADER_NAME.test(apiKeyHeader)) {
    throw fail('apiKeyHeader: must be a header name')
  }
  const onStoreError = raw.onStoreError ?? 'allow'
  if (onStoreError !== 'allow' && onStoreError !== 'deny') throw fail('onStoreError: must be "allow" or "deny"')
  const defaultRule = raw.default === undefined || raw.default === false
    ? null
    : resolveRule(raw.default, 'default', algorithm as Algorithm, apiKeyHeader.toLowerCase(), fail)
  const storeErrorRetryAfterMs = duration(raw.storeErrorRetryAfter ?? 5000, 'storeErrorRetryAfter', fail)
  const errorLogIntervalMs = duration(raw.errorLogInterval ?? 10_000, 'errorLogInterval', fail)
  const ipv6Subnet = raw.ipv6Subnet ?? 64
  if (typeof ipv6Subnet !== 'number' || !Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128) {
    throw fail('ipv6Subnet: must be an integer from 1 to 128')
  }
  const maxKeys = raw.maxKeys ?? 100_000
  if (typeof maxKeys !== 'number' || !Number.isSafeInteger(maxKeys) || maxKeys < 1) {
    throw fail('maxKeys: must be a positive integer')
  }
  if (raw.now !== undefined && typeof raw.now !== 'function') throw fail('now: must be a function returning epoch milliseconds')

  return Object.freeze({
    algorithm: algorithm as Algorithm,
    default: defaultRule,
    onStoreError,
    redis: resolveRedis(raw.redis, fail),
    apiKeyHeader: apiKeyHeader.toLowerCase(),
    // Delta-seconds, never 0: "retry now" would invite a retry storm against a failing store.
    storeErrorRetryAfterSeconds: Math.max(1, Math.ceil(storeErrorRetryAfterMs / 1000)),
    errorLogIntervalMs,
    ipv6Subnet,
    maxKeys,
    now: (raw.now as (() => number) | undefined) ?? null
  })
}

/**
 * Validates a route's `config.rateLimit`: `null` when the route is not limited (`false`, or
 * absent without a default), else its rule. Throws an `InvalidRouteConfigError` naming the route.
 */
export function resolveRouteRule (value: unknown, routeName: string, options: ResolvedOptions): ResolvedRule | null {
  if (value === undefined || value === null) return options.default
  if (value === false) return null
  const fail: Fail = (message) => new InvalidRouteConfigError(`route ${routeName}: ${message}`)
  return resolveRule(value, 'config.rateLimit', options.algorithm, options.apiKeyHeader, fail)
}
