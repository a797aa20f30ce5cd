import fp from 'fastify-plugin'
import { tollgateMicroservices, PLUGIN_NAME } from './plugin.js'

export * as errors from './errors.js'
export {
  resolveOptions,
  targetProblem,
  TRANSPORTS,
  type MicroservicesOptions,
  type MicroserviceUpstreamOptions,
  type MicroserviceRouteOptions,
  type PatternOptions,
  type Transport,
  type DataSource,
  type ResolvedOptions,
  type ResolvedUpstream,
  type ResolvedRoute,
  type ResolvedPattern
} from './options.js'
export { patternRoute, type Pattern, type PatternValue } from './protocol.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The target that served this request, `null` when none did. Set by @tollgate/proxy and @tollgate/microservices. */
    tollgateTarget: string | null
  }
  interface FastifyContextConfig {
    /** Set by @tollgate/microservices on the routes it makes (read-only information for other plugins). */
    tollgateMicroservices?: {
      upstream: string
      transport: string
      kind: 'pattern' | 'event'
      /** The pattern's route string (channel, subject). */
      pattern: string
    }
  }
}

/**
 * Answers HTTP routes with NestJS microservices over TCP, Redis or NATS. Not encapsulated
 * itself (it adds readiness checks to the shared runtime); its routes and its JSON-only
 * body parser live in an encapsulated child context.
 */
const plugin = fp(tollgateMicroservices, { fastify: '5.x', name: PLUGIN_NAME })

export default plugin
export { plugin as tollgateMicroservices }
