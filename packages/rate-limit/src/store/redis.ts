import { Redis } from 'ioredis'
import type { Decision } from '../algorithms.js'
import type { Algorithm, RedisClientLike, ResolvedRedis } from '../options.js'
import { FIXED_WINDOW_LUA, SLIDING_WINDOW_LUA, TOKEN_BUCKET_LUA } from './scripts.js'

type Reply = (error: Error | null | undefined, result?: unknown) => void
type ScriptCommand = (key: string, now: number, windowMs: number, max: number, callback: Reply) => void

/** Names under which the scripts are defined on the client (distinct from anything else on a shared client). */
const COMMANDS: Record<Algorithm, string> = {
  'fixed-window': 'tollgateRateLimitFixedWindow',
  'sliding-window': 'tollgateRateLimitSlidingWindow',
  'token-bucket': 'tollgateRateLimitTokenBucket'
}
const SCRIPTS: Record<Algorithm, string> = {
  'fixed-window': FIXED_WINDOW_LUA,
  'sliding-window': SLIDING_WINDOW_LUA,
  'token-bucket': TOKEN_BUCKET_LUA
}

interface Corkable { cork: () => void, uncork: () => void }

export type ConsumeCallback = (error: Error | null, decision: Decision | null) => void

/** Thrown (as a callback error) when Redis gives no answer within `commandTimeout`. */
export class StoreTimeoutError extends Error {
  constructor (ms: number) {
    super(`rate-limit store gave no answer within ${ms} ms`)
    this.name = 'StoreTimeoutError'
  }
}

/** The client is not connected (`status` is `connecting`, `reconnecting`, `end`...). */
export class StoreNotConnectedError extends Error {
  constructor (status: string) {
    super(`rate-limit store is not connected (redis ${status})`)
    this.name = 'StoreNotConnectedError'
  }
}

/**
 * A client the plugin owns, made so that a request never waits on an absent Redis and no
 * count is replayed late: no offline queue (commands fail at once while disconnected), a
 * short command timeout, in-flight commands failed (not resent) when the connection drops,
 * and reconnection forever with a capped backoff (recovery without a restart).
 */
export function createRedisClient (settings: ResolvedRedis): Redis {
  const client = new Redis(settings.url!, {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: settings.connectTimeoutMs,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times: number) => Math.min(50 * times, 1000),
    connectionName: 'tollgate-rate-limit'
  })
  return client
}

/** Buckets in Redis, one hash per bucket, each decision one atomic script call. */
export class RedisStore {
  readonly client: RedisClientLike
  readonly #keyPrefix: string
  readonly #commands: Record<Algorithm, ScriptCommand>
  /** Our own timer, only for a user's client without a (short enough) `commandTimeout`. */
  readonly #timeoutMs: number | null

  constructor (client: RedisClientLike, keyPrefix: string, commandTimeoutMs: number, owned: boolean) {
    this.client = client
    this.#keyPrefix = `${keyPrefix}rl:`
    const target = client as unknown as Record<string, ScriptCommand | undefined>
    for (const algorithm of Object.keys(COMMANDS) as Algorithm[]) {
      if (typeof target[COMMANDS[algorithm]] !== 'function') {
        client.defineCommand(COMMANDS[algorithm], { numberOfKeys: 1, lua: SCRIPTS[algorithm] })
      }
    }
    this.#commands = {
      'fixed-window': target[COMMANDS['fixed-window']]!.bind(client),
      'sliding-window': target[COMMANDS['sliding-window']]!.bind(client),
      'token-bucket': target[COMMANDS['token-bucket']]!.bind(client)
    }
    const own = client.options.commandTimeout
    this.#timeoutMs = owned || (own !== undefined && own <= commandTimeoutMs) ? null : commandTimeoutMs
  }

  /** `now` is epoch ms, or -1 for Redis's own clock. Calls back exactly once. */
  consume (algorithm: Algorithm, key: string, now: number, windowMs: number, max: number, callback: ConsumeCallback): void {
    // Not connected: fail now rather than let a client with an offline queue replay this
    // count later (our own client has none; a user's client might).
    if (this.client.status !== 'ready') {
      callback(new StoreNotConnectedError(this.client.status), null)
      return
    }
    const command = this.#commands[algorithm]
    const timeoutMs = this.#timeoutMs
    this.#corkUntilTurnEnds()
    if (timeoutMs === null) {
      command(this.#keyPrefix + key, now, windowMs, max, (error, result) => {
        if (error) callback(error, null)
        else decided(callback, result)
      })
      return
    }
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      callback(new StoreTimeoutError(timeoutMs), null)
    }, timeoutMs)
    command(this.#keyPrefix + key, now, windowMs, max, (error, result) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error) callback(error, null)
      else decided(callback, result)
    })
  }

  /**
   * The decisions asked for in one turn of the event loop leave in one write: the client's
   * socket is corked at the first and uncorked when the turn's I/O has been handled. Under
   * load a turn handles many requests, and a write is the largest single cost of a Redis
   * decision; measured head to head, the full gateway with the Redis store answered 5-8%
   * more requests per second. (ioredis's own `enableAutoPipelining` does this with a
   * pipeline and a promise per command, and measured 13-15% slower than no batching.)
   */
  #corkUntilTurnEnds (): void {
    if (this.#corked !== null) return
    const stream = (this.client as unknown as { stream?: Corkable }).stream
    if (stream === undefined || typeof stream.cork !== 'function') return
    stream.cork()
    this.#corked = stream
    setImmediate(this.#uncork)
  }

  #corked: Corkable | null = null
  readonly #uncork = (): void => {
    const stream = this.#corked
    this.#corked = null
    stream?.uncork()
  }

  /** Resolves when Redis answers a PING within the command timeout. */
  async ping (): Promise<void> {
    const timeoutMs = this.#timeoutMs
    if (timeoutMs === null) {
      await this.client.ping()
      return
    }
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.client.ping(),
        new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new StoreTimeoutError(timeoutMs)) }, timeoutMs) })
      ])
    } finally {
      clearTimeout(timer)
    }
  }
}

// At most 16 digits: every value is at most max or twice the window, both within MAX_SAFE_INTEGER (options.ts).
const REPLY = /^([01]) (\d{1,16}) (\d{1,16}) (\d{1,16})$/

/** A script's reply ("allowed remaining resetMs retryAfterMs", see scripts.ts), or `null` if it is not one. */
export function toDecision (result: unknown): Decision | null {
  if (typeof result !== 'string') return null
  const match = REPLY.exec(result)
  if (match === null) return null
  return { allowed: match[1] === '1', remaining: Number(match[2]), resetMs: Number(match[3]), retryAfterMs: Number(match[4]) }
}

/** The script answered something else: another script under our command name on a shared client. */
export class StoreReplyError extends Error {
  constructor (result: unknown) {
    super(`rate-limit store answered ${JSON.stringify(result)?.slice(0, 100) ?? String(result)}, not a decision`)
    this.name = 'StoreReplyError'
  }
}

function decided (callback: ConsumeCallback, result: unknown): void {
  const decision = toDecision(result)
  if (decision === null) callback(new StoreReplyError(result), null)
  else callback(null, decision)
}
