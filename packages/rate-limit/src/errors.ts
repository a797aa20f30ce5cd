import createError from '@fastify/error'

/** An option given to the plugin is invalid: registration (and `app.ready()`) fails with it. */
export const InvalidOptionError = createError('TOLLGATE_RATE_LIMIT_INVALID_OPTION', '%s', 500)

/** A route's `config.rateLimit` is invalid: the route fails to register (and `app.ready()` with it). */
export const InvalidRouteConfigError = createError('TOLLGATE_RATE_LIMIT_INVALID_ROUTE_CONFIG', '%s', 500)

/**
 * The request is over its limit. Sent with `Retry-After`, `RateLimit-Limit`,
 * `RateLimit-Remaining: 0` and `RateLimit-Reset` (all set on the reply before it is thrown).
 */
export const RateLimitExceededError = createError(
  'TOLLGATE_RATE_LIMIT_EXCEEDED',
  'Rate limit exceeded, retry in %s seconds',
  429,
  Error,
  false // an outcome, not a fault: no stack (it costs ~25 us and ~300 log bytes per refusal)
)

/**
 * The shared store (Redis) could not answer in time and `onStoreError` is `'deny'`.
 * Sent with `Retry-After`. The cause (the Redis error) is logged, never sent to the client.
 */
export const StoreUnavailableError = createError(
  'TOLLGATE_RATE_LIMIT_STORE_UNAVAILABLE',
  'Rate limit store unavailable',
  503
)
