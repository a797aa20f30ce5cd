import { timingSafeEqual } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify'
import { Agent } from 'undici'
import {
  connectionTokens,
  headerAlias,
  HeaderAliases,
  routeLabel,
  sha256,
  tollgateRuntime,
  type AuthFailureReason,
  type TollgateIdentity
} from '@tollgate/common'
import * as errors from './errors.js'
import { ForwardAuth } from './forward.js'
import { claimValue, identityHeaders, nameList, UnsafeIdentityValue } from './identity.js'
import { JwksStore } from './jwks.js'
import { createTokenVerifier, TokenRejection, type VerifyToken } from './jwt.js'
import { resolveOptions, resolveRouteAuth, type AuthOptions, type ResolvedApiKey, type ResolvedOptions, type RouteAuth } from './options.js'
import { TokenCache, type CachedToken } from './token-cache.js'

const PLUGIN_NAME = '@tollgate/auth'
const REALM = 'Bearer realm="tollgate"'
const INVALID_TOKEN = 'Bearer realm="tollgate", error="invalid_token"'
const INVALID_REQUEST = 'Bearer realm="tollgate", error="invalid_request"'
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i
const JWT_SHAPE = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/

/** Marks a route's resolved auth on its config (Fastify copies symbol keys into the route context). */
export const kRouteAuth = Symbol.for('tollgate.auth.route')
const kAuthHook = Symbol.for('tollgate.auth.hook')
/** Set on a request once a route hook of this plugin ran on it (the late-route safety net then has nothing to do). */
const kHandled = Symbol('tollgate.auth.handled')

interface RouteSetting {
  auth: RouteAuth
  stripCredentials: boolean
}

/** A refusal: the error to throw, with what the response and the event need. */
class Refusal extends Error {
  constructor (readonly reason: AuthFailureReason, readonly error: FastifyError, readonly wwwAuthenticate: string | undefined, options?: ErrorOptions) {
    super(error.message, options)
  }
}

function countRawHeader (rawHeaders: readonly string[], name: string): number {
  let count = 0
  const length = name.length
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i] as string
    if (raw.length === length && raw.toLowerCase() === name) count++
  }
  return count
}

/** Removes `name=value` pairs for `name` from a URL's query string, leaving the rest byte for byte. */
export function removeQueryParam (url: string, name: string): string {
  const at = url.indexOf('?')
  if (at === -1) return url
  const kept = url.slice(at + 1).split('&').filter((pair) => {
    const key = pair.split('=', 1)[0] as string
    try {
      return decodeURIComponent(key.replace(/\+/g, ' ')) !== name
    } catch {
      return true
    }
  })
  return kept.length === 0 ? url.slice(0, at) : `${url.slice(0, at)}?${kept.join('&')}`
}

function includesAny (have: readonly string[], wanted: readonly string[]): boolean {
  for (let i = 0; i < wanted.length; i++) if (have.includes(wanted[i] as string)) return true
  return false
}

function includesAll (have: readonly string[], wanted: readonly string[]): boolean {
  for (let i = 0; i < wanted.length; i++) if (!have.includes(wanted[i] as string)) return false
  return true
}

const tollgateAuth: FastifyPluginAsync<AuthOptions> = async function tollgateAuth (fastify: FastifyInstance, opts: AuthOptions) {
  const options: ResolvedOptions = resolveOptions(opts)
  const log = fastify.log.child({ plugin: PLUGIN_NAME })
  for (const warning of options.warnings) log.warn(warning)
  const runtime = tollgateRuntime(fastify)
  // Only this plugin decorates it (typed `| undefined` in @tollgate/common): elsewhere it stays
  // absent, which is how @tollgate/rate-limit knows no auth plugin vouches for an API key.
  if (!fastify.hasRequestDecorator('tollgateIdentity')) fastify.decorateRequest('tollgateIdentity', null)

  const { jwt, apiKeys, forward } = options
  const now = options.now
  let agent: Agent | undefined
  if (forward !== undefined || jwt?.source === 'jwks') {
    agent = new Agent({ connect: { timeout: Math.max(forward?.timeoutMs ?? 0, jwt?.jwksTimeoutMs ?? 0) } })
    const dispatcher = agent
    fastify.addHook('onClose', async () => { await dispatcher.close() })
  }

  let store: JwksStore | undefined
  if (jwt?.source === 'jwks') {
    const jwksStore = new JwksStore({
      url: jwt.jwksUrl as string,
      algorithms: jwt.algorithms,
      cooldownMs: jwt.jwksCooldownMs,
      maxAgeMs: jwt.jwksMaxAgeMs,
      timeoutMs: jwt.jwksTimeoutMs,
      now,
      dispatcher: agent as Agent,
      onError: (err) => { log.warn({ err }, 'JWKS fetch failed') }
    })
    store = jwksStore
    runtime.addReadinessCheck('auth:jwks', async () => {
      if (!jwksStore.loaded) await jwksStore.refresh()
      return jwksStore.loaded ? { ok: true } : { ok: false, message: `JWKS not loaded: ${jwksStore.lastError?.message ?? 'not fetched yet'}` }
    })
    // Warm the key set without holding up startup: the key server may come up after the gateway.
    fastify.addHook('onReady', async () => { void jwksStore.refresh() })
  }
  const verifyToken: VerifyToken | undefined = jwt === undefined ? undefined : createTokenVerifier(jwt, store, now)
  const tokenCache = jwt === undefined || jwt.tokenCacheSize === 0 ? undefined : new TokenCache(jwt.tokenCacheSize, jwt.clockToleranceMs, now, store)
  const forwardAuth = forward === undefined ? undefined : new ForwardAuth(forward, now, agent as Agent)
  const rolesClaim = jwt?.rolesClaim ?? 'roles'
  const permissionsClaim = jwt?.permissionsClaim ?? 'permissions'
  const stripAliases = new HeaderAliases(apiKeys === undefined ? ['authorization'] : ['authorization', headerAlias(apiKeys.header)])

  // ── Every request, every route (public ones, 404s and WebSocket upgrades included) ──
  const identityAliases = new HeaderAliases(options.identityAliases)
  if (identityAliases.size > 0) {
    fastify.addHook('onRequest', function removeClientIdentityHeaders (request, _reply, done) {
      const raw = request.raw
      // Replaced rather than deleted from, as in stripCredentials: see HeaderAliases.without.
      raw.headers = identityAliases.without(raw.headers)
      identityAliases.removeFromRaw(raw.rawHeaders)
      const connection = raw.headers.connection
      if (connection !== undefined) {
        // A name listed in Connection is hop-by-hop: a proxy would delete the header we set.
        const tokens = connectionTokens(connection)
        const kept = tokens.filter((token) => !identityAliases.has(token))
        if (kept.length !== tokens.length) {
          if (kept.length === 0) delete raw.headers.connection
          else raw.headers.connection = kept.join(', ')
        }
      }
      done()
    })
  }

  // ── Failures ──
  const refusalLevel = options.refusalLogLevel
  const unavailableLevel = refusalLevel === 'info' ? 'warn' : 'debug'
  function refuse (request: FastifyRequest, reply: FastifyReply, refusal: Refusal): FastifyError {
    if (refusal.wwwAuthenticate !== undefined) reply.header('WWW-Authenticate', refusal.wwwAuthenticate)
    if (refusal.reason === 'unavailable') {
      // With no key set loaded, the next fetch may be further off than retryAfter.
      const jwks = store !== undefined && !store.loaded ? store.retryAfterSeconds() : 0
      reply.header('Retry-After', String(Math.max(options.retryAfterSeconds, jwks)))
      request.log[unavailableLevel]({ err: refusal.cause, reason: refusal.reason }, 'authentication unavailable')
    } else {
      request.log[refusalLevel]({ reason: refusal.reason, code: refusal.error.code, detail: refusal.message === refusal.error.message ? undefined : refusal.message }, 'authentication refused')
    }
    runtime.events.emit('authFailure', { route: routeLabel(request), reason: refusal.reason })
    return refusal.error
  }

  const invalidToken = (detail: string, cause?: unknown): Refusal => {
    const refusal = new Refusal('invalid', new errors.InvalidTokenError(), INVALID_TOKEN, { cause })
    refusal.message = detail
    return refusal
  }

  // ── The methods ──
  /** A token verified (and then cached under `digest`). */
  async function jwtIdentity (token: string, digest: string | undefined): Promise<CachedToken> {
    const cache = tokenCache
    const version = cache?.version() ?? 0
    let claims: Record<string, unknown>
    try {
      claims = await (verifyToken as VerifyToken)(token)
    } catch (error) {
      if (!(error instanceof TokenRejection)) throw error
      if (error.failure === 'expired') throw new Refusal('expired', new errors.TokenExpiredError(), INVALID_TOKEN)
      if (error.failure === 'unavailable') {
        throw new Refusal('unavailable', new errors.UnavailableError(), undefined, { cause: error })
      }
      throw invalidToken(error.message, error)
    }
    const entry: CachedToken = {
      // Frozen: one object may now serve many requests.
      identity: Object.freeze({
        id: claims.sub as string,
        method: 'jwt',
        roles: Object.freeze(nameList(claimValue(claims, rolesClaim))),
        permissions: Object.freeze(nameList(claimValue(claims, permissionsClaim))),
        claims: Object.freeze(claims)
      }),
      expMs: (claims.exp as number) * 1000,
      nbfMs: typeof claims.nbf === 'number' ? claims.nbf * 1000 : Number.NEGATIVE_INFINITY,
      headers: undefined
    }
    if (cache !== undefined) cache.set(digest as string, entry, version)
    return entry
  }

  function findApiKey (presented: string): ResolvedApiKey | undefined {
    const digest = sha256(presented, 'buffer')
    let match: ResolvedApiKey | undefined
    // Compare with every key, in constant time each, without stopping at the first match.
    for (const key of (apiKeys?.keys ?? [])) {
      if (timingSafeEqual(digest, key.digest) && match === undefined) match = key
    }
    return match
  }

  function apiKeyIdentity (presented: string): TollgateIdentity {
    const key = findApiKey(presented)
    if (key === undefined) throw new Refusal('invalid', new errors.InvalidApiKeyError(), REALM)
    return { id: key.id, method: 'apiKey', roles: key.roles, permissions: key.permissions }
  }

  async function forwardIdentity (request: FastifyRequest, credentials: Record<string, string>): Promise<TollgateIdentity> {
    const decision = await (forwardAuth as ForwardAuth).check(request, credentials)
    if (decision.kind === 'allow') {
      return { id: decision.id, method: 'forward', roles: decision.roles, permissions: decision.permissions }
    }
    if (decision.kind === 'deny') {
      if (decision.status === 403) throw new Refusal('forbidden', new errors.ForwardForbiddenError(), undefined)
      throw new Refusal('invalid', new errors.ForwardUnauthorizedError(), decision.wwwAuthenticate ?? REALM)
    }
    throw new Refusal('unavailable', new errors.UnavailableError(), undefined, { cause: decision.cause })
  }

  /**
   * Authenticates with every credential of the request that the route accepts: each one
   * presented must be valid, and all must name one principal (never "first valid wins").
   * Credentials are all read (and refused when ambiguous) before any is checked, then
   * checked in order: token, API key, forward auth. No closure or list per request.
   *
   * Returns undefined when it is done synchronously: a cached token (or an API key) and
   * no forward auth, the usual request, costs no promise and no microtask hop.
   */
  function authenticate (request: FastifyRequest, reply: FastifyReply, auth: Extract<RouteAuth, { public: false }>): Promise<void> | undefined {
    try {
      const methods = auth.methods
      const raw = request.raw
      if (countRawHeader(raw.rawHeaders, 'authorization') > 1) {
        throw new Refusal('invalid', new errors.AmbiguousCredentialsError(), INVALID_REQUEST)
      }
      const authorization = request.headers.authorization
      const acceptsJwt = methods.includes('jwt')
      let bearer: string | undefined
      let digest: string | undefined
      let cached: CachedToken | undefined
      // Only a route that verifies tokens reads the header as one: elsewhere it is an opaque
      // credential for forward auth (or the upstream), whatever its syntax.
      if (acceptsJwt && typeof authorization === 'string' && /^bearer(?: |$)/i.test(authorization)) {
        // A plain `Bearer <token>` is looked up before its syntax is checked: a token is only
        // ever cached after passing the checks below and verification, so a hit proves them,
        // and the usual request skips two regular expressions over the whole token.
        if (tokenCache !== undefined && authorization.length > 7 &&
          authorization.charCodeAt(7) !== 32 && authorization.charCodeAt(authorization.length - 1) !== 32) {
          bearer = authorization.slice(7)
          digest = tokenCache.digest(bearer)
          cached = tokenCache.get(digest)
        }
        if (cached === undefined) {
          const match = BEARER.exec(authorization)
          if (match !== null) bearer = match[1] as string // the same string as the slice above, when there was one
          else if (methods.includes('forward')) bearer = undefined // not a JWT: forward auth judges it
          else throw invalidToken('malformed Authorization header')
        }
      }
      const useJwt = bearer !== undefined && acceptsJwt &&
        (!methods.includes('forward') || JWT_SHAPE.test(bearer))
      if (!useJwt) {
        digest = undefined
        cached = undefined
      } else if (digest === undefined && tokenCache !== undefined) {
        digest = tokenCache.digest(bearer as string)
        cached = tokenCache.get(digest)
      }

      let presented: string | undefined
      if (apiKeys !== undefined && methods.includes('apiKey')) {
        const header = request.headers[apiKeys.header]
        presented = Array.isArray(header) ? header.join(', ') : header
        if (apiKeys.query !== undefined) {
          const fromQuery = (request.query as Record<string, unknown> | undefined)?.[apiKeys.query]
          if (fromQuery !== undefined) {
            if (typeof fromQuery !== 'string' || (presented !== undefined && presented !== fromQuery)) {
              throw new Refusal('invalid', new errors.ConflictingCredentialsError(), REALM)
            }
            presented = fromQuery
          }
        }
      }

      let credentials: Record<string, string> | null = null
      if (forwardAuth !== undefined && methods.includes('forward')) credentials = forwardAuth.credentialHeaders(request, useJwt)

      if (!useJwt && presented === undefined && credentials === null) throw new Refusal('missing', new errors.MissingCredentialsError(), REALM)

      if ((useJwt && cached === undefined) || credentials !== null) {
        return authenticateLater(request, reply, auth, useJwt ? bearer as string : undefined, digest, cached, presented, credentials)
      }
      admit(request, auth, withApiKey(cached?.identity, presented), cached)
      return undefined
    } catch (error) {
      if (error instanceof Refusal) throw refuse(request, reply, error)
      throw error
    }
  }

  /** The rest of {@link authenticate} when a token must be verified or forward auth asked. */
  async function authenticateLater (
    request: FastifyRequest, reply: FastifyReply, auth: Extract<RouteAuth, { public: false }>,
    bearer: string | undefined, digest: string | undefined, hit: CachedToken | undefined,
    presented: string | undefined, credentials: Record<string, string> | null
  ): Promise<void> {
    try {
      const cached = hit ?? (bearer === undefined ? undefined : await jwtIdentity(bearer, digest))
      let identity = withApiKey(cached?.identity, presented)
      if (credentials !== null) identity = joinIdentity(identity, await forwardIdentity(request, credentials))
      admit(request, auth, identity, cached)
    } catch (error) {
      if (error instanceof Refusal) throw refuse(request, reply, error)
      throw error
    }
  }

  /** The identity a further credential found, joined to the one so far: both must name one principal. */
  function joinIdentity (identity: TollgateIdentity | undefined, found: TollgateIdentity): TollgateIdentity {
    if (identity === undefined) return found
    if (identity.id !== found.id) throw new Refusal('invalid', new errors.ConflictingCredentialsError(), REALM)
    return identity
  }

  /** The identity so far, joined with the API key presented (if any). */
  function withApiKey (identity: TollgateIdentity | undefined, presented: string | undefined): TollgateIdentity | undefined {
    return presented === undefined ? identity : joinIdentity(identity, apiKeyIdentity(presented))
  }

  /** Checks the verified identity against the route and hands it (and its headers) to the request. */
  function admit (request: FastifyRequest, auth: Extract<RouteAuth, { public: false }>, identity: TollgateIdentity | undefined, cached: CachedToken | undefined): void {
    const verified = identity as TollgateIdentity
    let headers: ReadonlyArray<readonly [string, string]>
    try {
      // A cached token's headers are computed once (they depend on its identity only).
      if (cached !== undefined && cached.identity === verified) {
        headers = cached.headers ?? (cached.headers = identityHeaders(verified, options.identityHeaders, rolesClaim, permissionsClaim))
      } else {
        headers = identityHeaders(verified, options.identityHeaders, rolesClaim, permissionsClaim)
      }
    } catch (error) {
      if (!(error instanceof UnsafeIdentityValue)) throw error
      throw invalidToken(error.message, error)
    }
    if (auth.roles.length > 0 && !includesAny(verified.roles, auth.roles)) {
      throw new Refusal('forbidden', new errors.ForbiddenError(), undefined)
    }
    if (!includesAll(verified.permissions, auth.permissions)) {
      throw new Refusal('forbidden', new errors.ForbiddenError(), undefined)
    }
    request.tollgateIdentity = verified
    const target = request.raw.headers
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i] as readonly [string, string]
      target[header[0]] = header[1]
    }
  }

  function stripCredentials (request: FastifyRequest): void {
    const raw = request.raw
    // Replaced rather than deleted from: see HeaderAliases.without.
    raw.headers = stripAliases.without(raw.headers)
    stripAliases.removeFromRaw(raw.rawHeaders)
    if (apiKeys?.query !== undefined && raw.url !== undefined) raw.url = removeQueryParam(raw.url, apiKeys.query)
  }

  function routeHook (setting: RouteSetting): onRequestHookHandler {
    const hook = setting.auth.public
      ? function tollgatePublicRoute (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) {
        (request as unknown as Record<symbol, boolean>)[kHandled] = true
        if (setting.stripCredentials) stripCredentials(request)
        done()
      }
      : function tollgateAuthenticate (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
        (request as unknown as Record<symbol, boolean>)[kHandled] = true
        let pending: Promise<void> | undefined
        try {
          pending = authenticate(request, reply, setting.auth as Extract<RouteAuth, { public: false }>)
        } catch (error) {
          done(error as Error)
          return
        }
        if (pending === undefined) {
          if (setting.stripCredentials) stripCredentials(request)
          done()
          return
        }
        pending.then(() => {
          if (setting.stripCredentials) stripCredentials(request)
          done()
        }, done)
      }
    Object.defineProperty(hook, kAuthHook, { value: true })
    return hook as onRequestHookHandler
  }

  function settingFor (routeOptions: Pick<RouteOptions, 'config' | 'method' | 'url'>): RouteSetting {
    const config = (routeOptions.config ?? {}) as Record<string | symbol, unknown>
    const where = `route ${String(routeOptions.method)} ${routeOptions.url ?? ''}`
    const strip = config.stripCredentials ?? false
    if (typeof strip !== 'boolean') throw new errors.InvalidRouteConfigError(`${where}: config.stripCredentials must be a boolean`)
    return { auth: resolveRouteAuth(config.auth, options, where), stripCredentials: strip }
  }

  // ── Per route: resolved (and validated) once, when the route is added ──
  fastify.addHook('onRoute', function addAuthHook (routeOptions) {
    const hooks = routeOptions.onRequest === undefined ? [] : Array.isArray(routeOptions.onRequest) ? [...routeOptions.onRequest] : [routeOptions.onRequest]
    if (hooks.some((hook) => (hook as unknown as Record<symbol, unknown>)[kAuthHook] === true)) return
    const setting = settingFor(routeOptions)
    hooks.push(routeHook(setting))
    routeOptions.onRequest = hooks
    routeOptions.config = { ...routeOptions.config, [kRouteAuth]: setting } as typeof routeOptions.config
  })

  // ── Safety net: a route added before this plugin never saw onRoute. Its own
  // config.auth still decides (resolved once per route, on its first request);
  // without one it gets the default, so nothing is left open by registration order.
  type LateHook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => unknown
  const lateRouteHooks = new WeakMap<object, LateHook>()
  fastify.addHook('preHandler', function authenticateUnknownRoutes (request, reply, done) {
    // The usual case, without reading request.routeOptions (a getter that builds an object).
    if ((request as unknown as Record<symbol, boolean | undefined>)[kHandled] === true || request.is404) {
      done()
      return
    }
    lateRoute(request, reply).then(() => { done() }, done)
  })

  async function lateRoute (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const config = request.routeOptions.config as unknown as Record<string | symbol, unknown>
    if (config[kRouteAuth] !== undefined) return
    let hook = lateRouteHooks.get(config)
    if (hook === undefined) {
      hook = routeHook(settingFor({ config: config as RouteOptions['config'], method: request.method, url: request.routeOptions.url ?? '' })) as unknown as LateHook
      lateRouteHooks.set(config, hook)
    }
    const run = hook
    await new Promise<void>((resolve, reject) => {
      run(request, reply, (error) => { if (error === undefined) resolve(); else reject(error) })
    })
  }
}

export default tollgateAuth
