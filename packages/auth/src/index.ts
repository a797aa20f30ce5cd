import fp from 'fastify-plugin'
import type { AuthMethod } from '@tollgate/common'
import tollgateAuth from './plugin.js'
import type { AuthOptions } from './options.js'

export * as errors from './errors.js'
export {
  resolveOptions,
  resolveRouteAuth,
  JWT_ALGORITHMS,
  MIN_SECRET_BYTES,
  type AuthOptions,
  type JwtOptions,
  type ApiKeysOptions,
  type ApiKeyEntry,
  type ForwardOptions,
  type JwtAlgorithm,
  type ResolvedOptions,
  type RouteAuth,
  type OptionProblem
} from './options.js'
export { nameList, claimValue } from './identity.js'
export type { TollgateIdentity, AuthMethod } from '@tollgate/common'

/** A route's `config.auth`: `false` for a public route, or what it requires. */
export type RouteAuthConfig = false | {
  /** Methods accepted on this route. Default: every configured method. */
  methods?: AuthMethod[]
  /** Any one of these roles is required. */
  roles?: string[]
  /** All of these permissions are required. */
  permissions?: string[]
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @tollgate/auth: `false` (public) or `{ methods?, roles?, permissions? }`. Absent: the plugin's `defaultRoute`. */
    auth?: RouteAuthConfig
    /** @tollgate/auth: remove `Authorization` and the API key header (and query parameter) before the handler/upstream. */
    stripCredentials?: boolean
  }
}

/** pino redact paths for the credential headers this plugin handles with the default options. */
export const redactPaths: readonly string[] = Object.freeze([
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]'
])

/** pino redact paths for the credential headers of these options (API key header, forwarded headers). */
export function redactPathsFor (options: Pick<AuthOptions, 'apiKeys' | 'forward'>): string[] {
  const names = new Set(['authorization', 'cookie', 'x-api-key'])
  if (options.apiKeys?.header !== undefined) names.add(options.apiKeys.header.toLowerCase())
  for (const name of options.forward?.forwardHeaders ?? []) names.add(name.toLowerCase())
  return [...names].map((name) => /^[a-z_$][a-z0-9_$]*$/.test(name) ? `req.headers.${name}` : `req.headers["${name}"]`)
}

/**
 * @tollgate/auth: JWT (secret, PEM key or JWKS with rotation), hashed API keys, forward
 * auth, roles and permissions, and identity headers upstreams can trust.
 */
const plugin = fp(tollgateAuth, { fastify: '5.x', name: '@tollgate/auth' })
export default plugin
export { plugin as tollgateAuth }
