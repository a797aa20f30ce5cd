import { LruCache, routeLabel, tollgateRuntime } from '@tollgate/common'
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onResponseHookHandler } from 'fastify'
import type { Decision } from './algorithms.js'
import { RateLimitExceededError, StoreUnavailableError } from './errors.js'
import { ipBucket } from './ip.js'
import { bucketKey, rulePrefix } from './keys.js'
import { resolveOptions, resolveRouteRule, type RedisClientLike, type ResolvedRule, type TollgateRateLimitOptions } from './options.js'
import { MemoryStore } from './store/memory.js'
import type { RedisStore } from './store/redis.js'

export const PLUGIN_NAME = '@tollgate/rate-limit'

/** What the limiter decided for a request, on `request.tollgateRateLimit`. */
export interface RateLimitInfo {
  /** The rule's `max` (`RateLimit-Limit`). */
  limit: number
  /** `RateLimit-Remaining`. */
  remaining: number
  /** `RateLimit-Reset`: delta-seconds until the full quota is back. */
  reset: number
}

/**
 * Store failures are logged at most once per interval (with how many were not logged), and
 * their end once, so an outage costs a few log lines, not one per request.
 */
class FailureLog {
  #lastAt = Number.NEGATIVE_INFINITY
  #suppressed = 0
  #failing = false

  constructor (
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs: number,
    private readonly clock: () => number,
    private readonly policy: 'allow' | 'deny'
  ) {}

  failure (error: unknown, during: string): void {
    this.#failing = true
    const now = this.clock()
    if (now - this.#lastAt < this.intervalMs) {
      this.#suppressed++
      return
    }
    this.log.error(
      { err: error, store: 'redis', onStoreError: this.policy, suppressed: this.#suppressed },
      `rate-limit store failed ${during}: ${this.policy === 'allow' ? 'admitting requests unlimited (fail open)' : 'refusing requests with 503 (fail closed)'}`
    )
    this.#lastAt = now
    this.#suppressed = 0
  }

  success (): void {
    if (!this.#failing) return
    this.#failing = false
    this.log.info({ store: 'redis', suppressed: this.#suppressed }, 'rate-limit store recovered')
    this.#suppressed = 0
    this.#lastAt = Number.NEGATIVE_INFINITY
  }
}

/*
 * Why not @fastify/rate-limit's request handler (its custom `store` being the usual extension
 * point): its handler derives everything from `{ current, ttl }` (remaining = max - current,
 * one ttl for both RateLimit-Reset and Retry-After), so a token bucket's "next token" and
 * "full again" times cannot both be told; on a store error it either rethrows the raw error
 * (no 503, no Retry-After) or skips silently (no log, no metric); and it reads the same
 * `config.rateLimit` key in its own `onRoute` hook with another shape (`timeWindow`,
 * `keyGenerator`), so the two cannot be registered on one app, nor its types imported next to
 * ours (its `FastifyContextConfig.rateLimit` augmentation conflicts). The hook below is the
 * small part it would have given us; the stores are ours either way.
 *
 * Why not @fastify/redis for the connection: it waits for Redis to be ready at registration,
 * so a Redis outage at boot would stop the gateway from starting at all, which is exactly
 * when `onStoreError` must decide. Its client can still be passed in (`redis: app.redis`).
 */
const plugin: FastifyPluginAsync<TollgateRateLimitOptions> = async (fastify, rawOptions) => {
  const options = resolveOptions(rawOptions)
  const runtime = tollgateRuntime(fastify)
  const events = runtime.events
  const log = fastify.log.child({ plugin: PLUGIN_NAME })
  const clock = options.now ?? Date.now
  const failures = new FailureLog(log, options.errorLogIntervalMs, clock, options.onStoreError)

  if (!fastify.hasRequestDecorator('tollgateRateLimit')) fastify.decorateRequest('tollgateRateLimit', null)

  let memory: MemoryStore | null = null
  let redis: RedisStore | null = null
  let sweeper: NodeJS.Timeout | null = null
  // Redis decides with its own clock (one clock for every instance) unless a clock was injected.
  const redisNow = options.now ?? (() => -1)

  if (options.redis === null) {
    const store = new MemoryStore(options.maxKeys)
    memory = store
    sweeper = setInterval(() => { store.sweep(clock()) }, 60_000)
    sweeper.unref()
  } else {
    // Loaded only with a Redis store: an app counting in memory never loads ioredis (~8 MB).
    const { createRedisClient, RedisStore } = await import('./store/redis.js')
    // The plugin's own client (ioredis 6, whose connection it manages), or the user's (any
    // ioredis 5 or 6 client: only RedisClientLike is used on it).
    const own = options.redis.client === null ? createRedisClient(options.redis) : null
    const client: RedisClientLike = options.redis.client ?? own!
    redis = new RedisStore(client, options.redis.keyPrefix, options.redis.commandTimeoutMs, own !== null)
    const onClientError = (error: Error): void => { failures.failure(error, 'to connect') }
    client.on('error', onClientError)
    if (own === null && client.options.enableOfflineQueue !== false) {
      log.warn('the Redis client given to @tollgate/rate-limit has an offline queue: give it enableOfflineQueue: false so that no request waits for a reconnection')
    }
    if (own !== null) {
      // Connect in the background: a Redis down at boot must not stop the app from starting.
      own.connect().catch(() => { /* reported through the 'error' event */ })
      // ...but give it up to connectTimeout before the app is ready, so a healthy Redis is
      // in use from the first request (with onStoreError: deny that request would be a 503).
      const connectTimeoutMs = options.redis.connectTimeoutMs
      const owned = own
      fastify.addHook('onReady', async () => {
        if (owned.status === 'ready') return
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, connectTimeoutMs)
          function done (): void {
            clearTimeout(timer)
            owned.off('ready', done)
            resolve()
          }
          owned.once('ready', done)
        })
      })
    }
    const store = redis
    runtime.addReadinessCheck('redis', async () => {
      if (client.status !== 'ready') return { ok: false, message: `redis connection is ${client.status}` }
      try {
        await store.ping()
        return { ok: true }
      } catch (error) {
        return { ok: false, message: (error as Error).message }
      }
    })
    fastify.addHook('onClose', async () => {
      client.off('error', onClientError)
      // disconnect(), not quit(): it never waits on an unreachable server, and stops reconnecting.
      // A handshake already under way can still fail after it; keep a listener so that late
      // error is not an unhandled 'error' event printed over the CLI's output.
      if (own !== null) {
        own.on('error', () => {})
        own.disconnect()
      }
    })
  }
  if (sweeper !== null) {
    const timer = sweeper
    fastify.addHook('onClose', async () => {
      clearInterval(timer)
      memory?.clear()
    })
  }

  const { ipv6Subnet, onStoreError, storeErrorRetryAfterSeconds } = options

  function respond (request: FastifyRequest, reply: FastifyReply, rule: ResolvedRule, decision: Decision, done: HookHandlerDoneFunction): void {
    const reset = Math.ceil(decision.resetMs / 1000)
    reply.header('ratelimit-limit', rule.max)
    reply.header('ratelimit-reset', reset)
    if (decision.allowed) {
      reply.header('ratelimit-remaining', decision.remaining)
      request.tollgateRateLimit = { limit: rule.max, remaining: decision.remaining, reset }
      done()
      return
    }
    // Delta-seconds, rounded up (never "retry now" before the request would be admitted).
    const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMs / 1000))
    reply.header('ratelimit-remaining', 0)
    reply.header('retry-after', retryAfter)
    request.tollgateRateLimit = { limit: rule.max, remaining: 0, reset }
    events.emit('rateLimited', { route: routeLabel(request) })
    done(new RateLimitExceededError(retryAfter))
  }

  function storeFailed (request: FastifyRequest, error: Error, reply: FastifyReply, rule: ResolvedRule, done: HookHandlerDoneFunction): void {
    events.emit('storeError', { store: 'redis' })
    failures.failure(error, 'to answer')
    if (onStoreError === 'allow') {
      // Admitted like any request, RateLimit-* headers included (the contract wants them on
      // every admitted answer): nothing could be counted, so the whole quota remains, for a
      // whole window.
      respond(request, reply, rule, { allowed: true, remaining: rule.max, resetMs: rule.windowMs, retryAfterMs: 0 }, done)
      return
    }
    reply.header('retry-after', storeErrorRetryAfterSeconds)
    done(new StoreUnavailableError({ cause: error }))
  }

  function hookFor (rule: ResolvedRule): onRequestHookHandler {
    const prefix = rulePrefix(rule)
    const { algorithm, windowMs, max } = rule
    if (max === 0) {
      // Nothing is ever admitted: no state to keep.
      const decision: Decision = { allowed: false, remaining: 0, resetMs: windowMs, retryAfterMs: windowMs }
      return function tollgateRateLimitClosed (request, reply, done) {
        respond(request, reply, rule, decision, done)
      }
    }
    if (memory !== null) {
      const store = memory
      // The route label is fixed per route: read once (request.routeOptions builds an object per read).
      let label: string | undefined
      return function tollgateRateLimitMemory (request, reply, done) {
        label ??= routeLabel(request)
        const decision = store.consume(algorithm, bucketKey(request, rule, prefix, ipv6Subnet, label), clock(), windowMs, max)
        respond(request, reply, rule, decision, done)
      }
    }
    const store = redis!
    let label: string | undefined
    return function tollgateRateLimitRedis (request, reply, done) {
      label ??= routeLabel(request)
      store.consume(algorithm, bucketKey(request, rule, prefix, ipv6Subnet, label), redisNow(), windowMs, max, (error, decision) => {
        if (error !== null) {
          storeFailed(request, error, reply, rule, done)
          return
        }
        failures.success()
        respond(request, reply, rule, decision!, done)
      })
    }
  }

  /*
   * Failed authentication counts too. A request refused with 401/403 before this limiter
   * ran (auth's hook comes first) still costs its client IP one unit of a separate
   * "failures" bucket of the route, of the route's size. Once a consume finds that bucket
   * empty, this instance refuses the IP on the route with 429 *before* authentication,
   * until the bucket refills: credential guessing is limited like any other traffic, and
   * the check costs one local map lookup (no store call) per request.
   */
  const blockedUntil = new LruCache<string, number>(10_000)

  function failureKey (prefix: string, label: string, request: FastifyRequest): string {
    return `${prefix}${label}|f:${ipBucket(request.ip, ipv6Subnet)}`
  }

  function failedAuthHooks (rule: ResolvedRule): { guard: onRequestHookHandler, count: onResponseHookHandler } {
    const prefix = rulePrefix(rule)
    const { algorithm, windowMs, max } = rule
    let label: string | undefined
    const block = (key: string, decision: Decision): void => {
      if (!decision.allowed) blockedUntil.set(key, clock() + Math.max(1000, decision.retryAfterMs))
    }
    return {
      guard: function tollgateFailedAuthGuard (request, reply, done) {
        // Nobody blocked (the usual case): no key to build for the lookup.
        if (blockedUntil.size === 0) {
          done()
          return
        }
        label ??= routeLabel(request)
        const key = failureKey(prefix, label, request)
        const until = blockedUntil.get(key)
        if (until === undefined) {
          done()
          return
        }
        const waitMs = until - clock()
        if (waitMs <= 0) {
          blockedUntil.delete(key)
          done()
          return
        }
        respond(request, reply, rule, { allowed: false, remaining: 0, resetMs: waitMs, retryAfterMs: waitMs }, done)
      },
      count: function tollgateCountFailedAuth (request, reply, done) {
        const status = reply.statusCode
        // Only refusals by authentication: the limiter had not run (auth's hook threw first).
        if ((status !== 401 && status !== 403) || request.tollgateRateLimit !== null || max === 0) {
          done()
          return
        }
        label ??= routeLabel(request)
        const key = failureKey(prefix, label, request)
        if (memory !== null) {
          block(key, memory.consume(algorithm, key, clock(), windowMs, max))
        } else {
          redis!.consume(algorithm, key, redisNow(), windowMs, max, (error, decision) => {
            if (error !== null) {
              events.emit('storeError', { store: 'redis' })
              failures.failure(error, 'to answer')
              return
            }
            block(key, decision!)
          })
        }
        done()
      }
    }
  }

  // Routes added before this plugin was loaded (see the safety net at the end) are already in
  // the router. '(empty tree)' is Fastify's rendering of an empty router; any other answer (a
  // route, or another rendering in a later version) installs the net, at a check per request.
  const lateRoutesPossible = fastify.printRoutes() !== '(empty tree)'

  // Marks the config of every route this registration's onRoute hook compiled (limited or
  // not), so the late-route safety net below can tell them apart. Fastify copies the config's
  // symbol keys into the route's context.
  const kCompiled = Symbol('tollgate.rateLimit.compiled')

  // Per-route settings are read when each route is added, so a bad `config.rateLimit` fails
  // registration (and `app.ready()`), never the first request. The hook is appended to the
  // route's onRequest list: plugins registered earlier (auth) run first.
  fastify.addHook('onRoute', (routeOptions) => {
    const method = Array.isArray(routeOptions.method) ? routeOptions.method.join(',') : routeOptions.method
    const rule = resolveRouteRule(routeOptions.config?.rateLimit, `${method} ${routeOptions.url}`, options)
    if (lateRoutesPossible) routeOptions.config = { ...routeOptions.config, [kCompiled]: true } as typeof routeOptions.config
    if (rule === null) return
    const hook = hookFor(rule)
    const { guard, count } = failedAuthHooks(rule)
    // The guard runs before authentication (first); the limiter after it (last).
    const existing = routeOptions.onRequest
    if (Array.isArray(existing)) routeOptions.onRequest = [guard, ...existing, hook]
    else if (typeof existing === 'function') routeOptions.onRequest = [guard, existing, hook]
    else routeOptions.onRequest = [guard, hook]
    const onResponse = routeOptions.onResponse
    if (Array.isArray(onResponse)) routeOptions.onResponse = [...onResponse, count]
    else if (typeof onResponse === 'function') routeOptions.onResponse = [onResponse, count]
    else routeOptions.onResponse = [count]
  })

  /*
   * Safety net for routes added before the onRoute hook above existed: the usual Fastify style
   * without top-level await, `app.register(tollgateRateLimit, ...)` then `app.get(...)`, declares
   * the routes synchronously, before the plugin is loaded. Such routes are already in the router
   * when this function runs, so the net is installed only when the router is not empty: an app
   * that awaits the registration before its routes pays nothing for it.
   *
   * Fastify gives no public list of routes with their config (onRoute is the documented way,
   * printRoutes() is text), so a late route cannot be checked at onReady: its config.rateLimit
   * is compiled on its first request, once per route (cached by its config object), and applied
   * the same way: limiter in preHandler (after @tollgate/auth's own safety net, which is a
   * preHandler registered earlier, so `by: 'user'` sees the identity), failed-auth guard in
   * onRequest and count in onResponse. An invalid config fails closed: every request of that
   * route gets the InvalidRouteConfigError (500), logged once here with the route and the key.
   */
  if (!lateRoutesPossible) return

  interface LateRoute {
    readonly hook: onRequestHookHandler | null
    readonly guard: onRequestHookHandler | null
    readonly count: onResponseHookHandler | null
    readonly error: Error | null
  }
  const NOT_LIMITED: LateRoute = Object.freeze({ hook: null, guard: null, count: null, error: null })
  const lateRoutes = new WeakMap<object, LateRoute>()

  /** The compiled late route of this request, or null when onRoute compiled it (or it is the 404 route). */
  function lateRoute (request: FastifyRequest): LateRoute | null {
    if (request.is404) return null
    const routeOptions = request.routeOptions
    const config = routeOptions.config as unknown as Record<symbol, unknown>
    if (config[kCompiled] === true) return null
    let late = lateRoutes.get(config)
    if (late === undefined) {
      const method = Array.isArray(routeOptions.method) ? routeOptions.method.join(',') : routeOptions.method
      const routeName = `${method} ${routeOptions.url}`
      try {
        const rule = resolveRouteRule(routeOptions.config.rateLimit, routeName, options)
        late = rule === null ? NOT_LIMITED : { hook: hookFor(rule), ...failedAuthHooks(rule), error: null }
      } catch (error) {
        log.error({ err: error, route: routeName }, `route ${routeName} was added before @tollgate/rate-limit was loaded and its config.rateLimit is invalid: answering 500; register the plugin with await before the routes so that app.ready() fails instead`)
        late = { hook: null, guard: null, count: null, error: error as Error }
      }
      lateRoutes.set(config, late)
    }
    return late
  }

  fastify.addHook('onRequest', function tollgateRateLimitLateGuard (request, reply, done) {
    // Nobody blocked (the usual case): nothing to look up.
    if (blockedUntil.size === 0) {
      done()
      return
    }
    const guard = lateRoute(request)?.guard
    if (guard == null) done()
    else guard.call(this, request, reply, done)
  })

  fastify.addHook('preHandler', function tollgateRateLimitLateRoute (request, reply, done) {
    // Limited by its own onRoute hook (the usual case): one property read.
    if (request.tollgateRateLimit !== null) {
      done()
      return
    }
    const late = lateRoute(request)
    if (late === null || late.hook === null) done(late?.error ?? undefined)
    else late.hook.call(this, request, reply, done)
  })

  fastify.addHook('onResponse', function tollgateRateLimitLateCount (request, reply, done) {
    const status = reply.statusCode
    // Only refusals by authentication, which ran before any limiter.
    if ((status !== 401 && status !== 403) || request.tollgateRateLimit !== null) {
      done()
      return
    }
    const count = lateRoute(request)?.count
    if (count == null) done()
    else count.call(this, request, reply, done)
  })
}

export default plugin
