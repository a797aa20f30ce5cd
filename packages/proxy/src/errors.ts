import createError from '@fastify/error'

/** Refusals (4xx) are outcomes, not faults: no stack (it costs ~25 us and ~300 log bytes per refusal). */
const NO_STACK = false

/**
 * Errors of @tollgate/proxy. Messages never name an upstream address: the
 * failing target and the library error travel in `cause`, which goes to the
 * log and never to the client.
 */

/** An option given to the plugin is invalid; fails `app.ready()`. */
export const InvalidOptionError = createError('TOLLGATE_PROXY_INVALID_OPTION', '%s', 500)

/** The request path is not in normal form (dot segments, encoded separators, `//`, ...). */
export const BadPathError = createError('TOLLGATE_PROXY_BAD_PATH', 'Bad request path: %s', 400, Error, NO_STACK)

/** The route does not list the request's method (or the method is TRACE/CONNECT). */
export const MethodNotAllowedError = createError('TOLLGATE_PROXY_METHOD_NOT_ALLOWED', 'Method %s is not allowed on this route', 405, Error, NO_STACK)

/** The request body is larger than `bodyLimit`. */
export const BodyTooLargeError = createError('TOLLGATE_PROXY_BODY_TOO_LARGE', 'Request body is too large', 413, Error, NO_STACK)

/** Every target tried refused the connection, or no target is healthy. */
export const UpstreamUnavailableError = createError('TOLLGATE_PROXY_UPSTREAM_UNAVAILABLE', 'The upstream service is unavailable', 503)

/** The upstream reset the connection before its headers, or answered something that is not HTTP. */
export const BadGatewayError = createError('TOLLGATE_PROXY_BAD_GATEWAY', 'The upstream service sent an invalid response', 502)

/** The upstream sent no response headers within `timeout`. */
export const GatewayTimeoutError = createError('TOLLGATE_PROXY_GATEWAY_TIMEOUT', 'The upstream service did not answer in time', 504)

/** The gateway is closing: a WebSocket handshake still waiting for its upstream is answered this way (`Retry-After` set). */
export const ShuttingDownError = createError('TOLLGATE_PROXY_SHUTTING_DOWN', 'The gateway is shutting down', 503, Error, NO_STACK)

/** The upstream already has `websocket.maxConnections` tunnels open (`Retry-After` set). */
export const WebSocketLimitError = createError('TOLLGATE_PROXY_WEBSOCKET_LIMIT', 'Too many WebSocket connections to this service', 503)

/** The request does not satisfy the route's `validate` schemas; the message lists every problem as `path: message`. */
export const RequestValidationError = createError('TOLLGATE_PROXY_INVALID_REQUEST', '%s', 400, Error, NO_STACK)

/** The route validates the body of this method as JSON, and the request's body is not JSON. */
export const UnsupportedMediaTypeError = createError('TOLLGATE_PROXY_UNSUPPORTED_MEDIA_TYPE', 'The request body must be JSON (application/json) on this route', 415, Error, NO_STACK)

/** The request body stopped before its declared length (the stream failed); nothing was sent upstream. */
export const IncompleteBodyError = createError('TOLLGATE_PROXY_INCOMPLETE_BODY', 'The request body is incomplete', 400, Error, NO_STACK)
