import createError from '@fastify/error'

/** Refusals (4xx) are outcomes, not faults: no stack (it costs ~25 us and ~300 log bytes per refusal). */
const NO_STACK = false

/** An option given to the plugin is invalid: registration (and `app.ready()`) fails with it. */
export const InvalidOptionError = createError('TOLLGATE_AUTH_INVALID_OPTION', '%s', 500)

/** A route's `config.auth` is invalid: the route fails to register. */
export const InvalidRouteConfigError = createError('TOLLGATE_AUTH_INVALID_ROUTE_CONFIG', '%s', 500)

/** A protected route was called without any credential it accepts. */
export const MissingCredentialsError = createError('TOLLGATE_AUTH_MISSING_CREDENTIALS', 'Authentication required', 401, Error, NO_STACK)

/** The bearer token is malformed, unsigned, badly signed, from an unknown key, or has a wrong claim. */
export const InvalidTokenError = createError('TOLLGATE_AUTH_INVALID_TOKEN', 'Invalid token', 401, Error, NO_STACK)

/** The bearer token is past its `exp` (or not yet valid: `nbf`). */
export const TokenExpiredError = createError('TOLLGATE_AUTH_TOKEN_EXPIRED', 'Token expired', 401, Error, NO_STACK)

/** The API key matches no configured key. */
export const InvalidApiKeyError = createError('TOLLGATE_AUTH_INVALID_API_KEY', 'Invalid API key', 401, Error, NO_STACK)

/** The forward-auth service refused the credentials with 401 (or another 4xx). */
export const ForwardUnauthorizedError = createError('TOLLGATE_AUTH_FORWARD_UNAUTHORIZED', 'Authentication refused', 401, Error, NO_STACK)

/** The forward-auth service refused the credentials with 403. */
export const ForwardForbiddenError = createError('TOLLGATE_AUTH_FORWARD_FORBIDDEN', 'Access denied', 403, Error, NO_STACK)

/** Authenticated, but a required role or permission is missing. */
export const ForbiddenError = createError('TOLLGATE_AUTH_FORBIDDEN', 'Insufficient role or permission', 403, Error, NO_STACK)

/** The forward-auth service or the JWKS could not give an answer: fail closed. */
export const UnavailableError = createError('TOLLGATE_AUTH_UNAVAILABLE', 'Authentication service unavailable', 503)

/** The request carries two `Authorization` headers. */
export const AmbiguousCredentialsError = createError('TOLLGATE_AUTH_AMBIGUOUS_CREDENTIALS', 'Only one Authorization header is allowed', 400, Error, NO_STACK)

/** Two credentials in one request identify different principals. */
export const ConflictingCredentialsError = createError('TOLLGATE_AUTH_CONFLICTING_CREDENTIALS', 'Credentials identify different principals', 401, Error, NO_STACK)
