import createError from '@fastify/error'

/** Refusals (4xx) are outcomes, not faults: no stack (it costs ~25 us and ~300 log bytes per refusal). */
const NO_STACK = false

/**
 * Errors of @tollgate/microservices. Messages never name a target address nor
 * repeat what a service said, except the message of an `RpcException` carrying
 * a 4xx status (the service meant it for the client). Library and transport
 * failures travel in `cause`, which goes to the log and never to the client.
 */

/** An option given to the plugin is invalid; fails `app.ready()` with `path: message`. */
export const InvalidOptionError = createError('TOLLGATE_MICROSERVICES_INVALID_OPTION', '%s', 500)

/** The request path is not in normal form (dot segments, encoded separators, `//`, ...). */
export const BadPathError = createError('TOLLGATE_MICROSERVICES_BAD_PATH', 'Bad request path: %s', 400, Error, NO_STACK)

/** The path is mapped to a pattern, but not for this method (`Allow` is set). */
export const MethodNotAllowedError = createError('TOLLGATE_MICROSERVICES_METHOD_NOT_ALLOWED', 'Method %s is not allowed on this route', 405, Error, NO_STACK)

/**
 * Nobody took the message: TCP connection refused (or not made within `connectTimeout`),
 * Redis PUBLISH reaching no subscriber, NATS "no responders", the transport itself
 * unreachable, or a service without a handler for the pattern. `Retry-After` is set.
 */
export const NoResponderError = createError('TOLLGATE_MICROSERVICES_NO_RESPONDER', 'The upstream service is unavailable', 503)

/** The request is larger than the transport carries in one message (NATS `max_payload`): retrying cannot help. */
export const PayloadTooLargeError = createError('TOLLGATE_MICROSERVICES_PAYLOAD_TOO_LARGE', 'The request is too large for the upstream service\'s transport', 413, Error, NO_STACK)

/** No complete reply within the upstream's `timeout`; a reply arriving later is dropped. */
export const TimeoutError = createError('TOLLGATE_MICROSERVICES_TIMEOUT', 'The upstream service did not answer in time', 504)

/** The service failed (an error other than a 4xx `RpcException`), or the connection broke before the reply. */
export const BadGatewayError = createError('TOLLGATE_MICROSERVICES_BAD_GATEWAY', 'The upstream service failed to handle the request', 502)

/**
 * The service refused the request with an `RpcException` whose error carries a 4xx
 * `statusCode` (or `status`): answered with that status and the error's `message`.
 * The status on an instance is that of the reply (400 is only the default).
 */
export const RejectedError = createError('TOLLGATE_MICROSERVICES_REJECTED', '%s', 400, Error, NO_STACK)

/** The request does not satisfy the pattern's `validate` schemas; the message lists every problem as `path: message`. */
export const RequestValidationError = createError('TOLLGATE_MICROSERVICES_INVALID_REQUEST', '%s', 400, Error, NO_STACK)
