/** How a request was authenticated. */
export type AuthMethod = 'jwt' | 'apiKey' | 'forward'

/** The verified identity of a request, set by @tollgate/auth. Never built from unverified input. */
export interface TollgateIdentity {
  /** The principal: the token's `sub`, the API key's id, or the forward-auth service's answer. */
  id: string
  method: AuthMethod
  roles: readonly string[]
  permissions: readonly string[]
  /** The verified token claims (JWT only). */
  claims?: Readonly<Record<string, unknown>>
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The verified identity. Decorated by @tollgate/auth only: `null` on a request it let
     * through without one (a public route), `undefined` where @tollgate/auth is not registered
     * (not in this app, or not in this route's encapsulation context). Read it as
     * `request.tollgateIdentity?.id`; `== null` covers both kinds of anonymous.
     */
    tollgateIdentity: TollgateIdentity | null | undefined
  }
}
