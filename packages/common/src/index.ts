export { parseDuration, parseSize, type Duration, type Size } from './units.js'
export { headerAlias, connectionTokens, removeAliasedHeaders, HeaderAliases, HOP_BY_HOP_HEADERS } from './headers.js'
export { isSaneRequestId, requestIdFor } from './request-id.js'
export { parseTraceparent, nextTraceparent, newSpanId, newTraceId, type TraceParent } from './trace-context.js'
export { decodeUnreserved, pathProblem } from './path.js'
export { currentResponse } from './socket.js'
export { LruCache } from './lru.js'
export {
  tollgateRuntime,
  routeLabel,
  TollgateEvents,
  type TollgateRuntime,
  type TollgateEventMap,
  type TollgateEventName,
  type AuthFailureReason,
  type CircuitState,
  type ReadinessCheck,
  type ReadinessResult
} from './runtime.js'
export type { TollgateIdentity, AuthMethod } from './identity.js'
export {
  compileRequestSchemas,
  describeErrors,
  requestProblems,
  REQUEST_PARTS,
  type RequestPart,
  type RequestSchemas,
  type RequestValidator,
  type RequestValidators
} from './schema.js'
export { sha256 } from './hash.js'
