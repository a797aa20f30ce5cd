import fp from 'fastify-plugin'
import { tollgateProxy, PLUGIN_NAME, type TollgateProxyApi } from './plugin.js'

export * as errors from './errors.js'
export {
  resolveOptions,
  PROXIED_METHODS,
  type ProxyOptions,
  type UpstreamOptions,
  type RouteOptions,
  type TargetOptions,
  type HealthCheckOptions,
  type CircuitBreakerOptions,
  type WebSocketOptions,
  type BalanceStrategy,
  type ResolvedOptions,
  type ResolvedUpstream,
  type ResolvedRoute,
  type ResolvedTarget
} from './options.js'
export type { TollgateProxyApi, TargetSnapshot } from './plugin.js'
export type { ValidateOptions, RequestSchemas } from './validation.js'
export type { RequestPart } from '@tollgate/common'
export type { ResponseSchemas } from './shaping.js'
export { PROTECTED_HEADERS, type HeaderRulesOptions } from './header-rules.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The target URL (origin) that served this request, `null` when it was not proxied. Set by @tollgate/proxy. */
    tollgateTarget: string | null
  }
  interface FastifyInstance {
    /** Live upstream state and an on-demand health check. Decorated by @tollgate/proxy. */
    tollgateProxy: TollgateProxyApi
  }
  interface FastifyContextConfig {
    /** Set by @tollgate/proxy on the routes it makes (read-only information for other plugins). */
    tollgateProxy?: {
      upstream: string
      prefix: string
      rewritePrefix: string
      websocket: boolean
    }
  }
}

/**
 * Proxies route prefixes to named upstreams. Not encapsulated itself (it decorates
 * the shared runtime on the instance it is registered on); its routes, hooks and
 * content-type parser live in an encapsulated child context.
 */
const plugin = fp(tollgateProxy, { fastify: '5.x', name: PLUGIN_NAME })

export default plugin
export { plugin as tollgateProxy }
