import fp from 'fastify-plugin'
import plugin, { PLUGIN_NAME, type RateLimitInfo } from './plugin.js'
import type { RateLimitRule } from './options.js'

export * as errors from './errors.js'
export {
  resolveOptions,
  resolveRouteRule,
  type Algorithm,
  type KeyBy,
  type RateLimitRule,
  type RedisClientLike,
  type RedisStoreOptions,
  type ResolvedOptions,
  type ResolvedRule,
  type TollgateRateLimitOptions
} from './options.js'
export type { RateLimitInfo } from './plugin.js'
export type { Decision } from './algorithms.js'
export { fixedWindow, slidingWindow, tokenBucket } from './algorithms.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * This route's limit (`{ max, window, by?, algorithm? }`), or `false` to never limit it.
     * Absent: the plugin's `default` applies, when it has one.
     */
    rateLimit?: RateLimitRule | false
  }
  interface FastifyRequest {
    /** The limiter's verdict for this request; `null` when the route is not limited (or the store failed open). */
    tollgateRateLimit: RateLimitInfo | null
  }
}

/**
 * Rate limits for Fastify: fixed-window, sliding-window or token-bucket, per route and per
 * client (IP, verified user, API key or header), in memory or shared exactly through Redis.
 */
const tollgateRateLimit = fp(plugin, { fastify: '5.x', name: PLUGIN_NAME })

export default tollgateRateLimit
export { tollgateRateLimit }
