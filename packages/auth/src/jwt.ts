import { createDecoder, createVerifier, type Algorithm } from 'fast-jwt'
import { JwksKeyError, type JwksKey, type JwksStore } from './jwks.js'
import type { ResolvedJwt } from './options.js'

/** Why a token was refused. */
export type TokenFailure = 'invalid' | 'expired' | 'unavailable'

export class TokenRejection extends Error {
  constructor (readonly failure: TokenFailure, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'TokenRejection'
  }
}

export type VerifyToken = (token: string) => Promise<Record<string, unknown>>

interface DecodedJwt {
  header: Record<string, unknown>
  payload: unknown
}

/**
 * Builds the token verifier: one fast-jwt verifier for a secret or a PEM key, fast-jwt
 * verifiers per key and algorithm for a JWKS. Nothing is registered on the app, so the
 * user's own @fastify/jwt (`fastify.jwt`, `request.user`, `request.jwtVerify`) is never in
 * the way, whichever is registered first.
 *
 * The key always comes from configuration (a secret, a PEM key, or the configured
 * JWKS by `kid`): `jwk`, `jku`, `x5u` and `x5c` headers are never read. fast-jwt checks
 * the signature against the algorithm allow-list, `iss`, `aud`, `exp`, `nbf`; on top of
 * it `exp` is required, the payload must be an object, and `exp`/`nbf` are checked
 * again against the plugin's clock (`now`), so no token outlives its `exp`.
 */
export function createTokenVerifier (jwt: ResolvedJwt, store: JwksStore | undefined, now: () => number): VerifyToken {
  const verifyOptions: VerifyOptions = {
    algorithms: [...jwt.algorithms] as Algorithm[],
    ...(jwt.issuer === undefined ? {} : { allowedIss: [...jwt.issuer] }),
    ...(jwt.audience === undefined ? {} : { allowedAud: [...jwt.audience] }),
    clockTolerance: jwt.clockToleranceMs,
    // fast-jwt skips an iss/aud check when the claim is absent: require them when configured.
    requiredClaims: ['exp', ...(jwt.issuer === undefined ? [] : ['iss']), ...(jwt.audience === undefined ? [] : ['aud'])],
    cache: false
  }
  const verifyWithJwt = jwt.source === 'jwks'
    ? jwksVerifier(jwt, store as JwksStore, verifyOptions)
    : staticKeyVerifier(jwt.source === 'secret' ? jwt.secret as string : jwt.publicKeyPem as string, verifyOptions)

  return async function verifyToken (token: string): Promise<Record<string, unknown>> {
    let payload: unknown
    try {
      payload = await verifyWithJwt(token)
    } catch (error) {
      throw rejection(error)
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new TokenRejection('invalid', 'payload is not an object')
    }
    const claims = payload as Record<string, unknown>
    const at = now()
    const tolerance = jwt.clockToleranceMs
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) throw new TokenRejection('invalid', 'exp is required')
    if (at > claims.exp * 1000 + tolerance) throw new TokenRejection('expired', 'token expired')
    if (claims.nbf !== undefined) {
      if (typeof claims.nbf !== 'number' || !Number.isFinite(claims.nbf)) throw new TokenRejection('invalid', 'nbf must be a number')
      if (at < claims.nbf * 1000 - tolerance) throw new TokenRejection('invalid', 'token not yet valid')
    }
    // RFC 7519 4.1.6: a NumericDate (jose refuses anything else too). A token issued
    // further in the future than clockTolerance came from a clock out of step with ours,
    // or was minted ahead of time: refused, like one not yet valid by nbf.
    if (claims.iat !== undefined) {
      if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) throw new TokenRejection('invalid', 'iat must be a number')
      if (at < claims.iat * 1000 - tolerance) throw new TokenRejection('invalid', 'token issued in the future')
    }
    if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw new TokenRejection('invalid', 'sub must be a non-empty string')
    return claims
  }
}

interface VerifyOptions {
  algorithms: Algorithm[]
  allowedIss?: string[]
  allowedAud?: string[]
  clockTolerance: number
  requiredClaims: string[]
  cache: false
}

/**
 * One configured key (a secret or a PEM key): the fast-jwt verifier that @fastify/jwt would
 * build from `{ secret: { public: key }, verify }` (its `jwt.verify(token)` is exactly
 * `createVerifier({ key, ...verify })(token)`), made here directly. Registering @fastify/jwt,
 * even in a child scope, decorates `request.user`, `request.jwtVerify`, `reply.jwtSign` and
 * `fastify.jwt`, which fails with FST_ERR_DEC_ALREADY_PRESENT when the user registered their
 * own @fastify/jwt first. The key is prepared once, here, not on every verification.
 */
function staticKeyVerifier (key: string, verify: VerifyOptions): (token: string) => unknown {
  return createVerifier({ ...verify, key }) as (token: string) => unknown
}

/**
 * Keys of the configured JWKS, chosen by the token's `kid` and `alg` (never by `jwk`, `jku`,
 * `x5u` or `x5c` headers). One fast-jwt verifier per key and algorithm, made on the key's first
 * use and dropped with the key set it came from: the public key object is built once, not on
 * every verification (which a key callback does: fast-jwt re-imports the PEM it returns).
 */
function jwksVerifier (jwt: ResolvedJwt, jwks: JwksStore, verify: VerifyOptions): (token: string) => unknown {
  const decode = createDecoder({ complete: true })
  const verifiers = new WeakMap<JwksKey, Map<string, (token: string) => unknown>>()
  function verifierFor (key: JwksKey, alg: string): (token: string) => unknown {
    let byAlg = verifiers.get(key)
    if (byAlg === undefined) {
      byAlg = new Map()
      verifiers.set(key, byAlg)
    }
    let verifier = byAlg.get(alg)
    if (verifier === undefined) {
      verifier = createVerifier({ ...verify, key: key.pem, algorithms: [alg as Algorithm] }) as (token: string) => unknown
      byAlg.set(alg, verifier)
    }
    return verifier
  }
  return async function verifyWithJwks (token: string): Promise<unknown> {
    // A malformed token is refused before any key lookup (as fast-jwt does with a key callback).
    const { header } = decode(token) as DecodedJwt
    const { kid, alg } = header
    if (kid !== undefined && typeof kid !== 'string') throw new JwksKeyError('kid must be a string', false)
    if (typeof alg !== 'string' || !jwt.algorithms.includes(alg as never)) throw new JwksKeyError('algorithm not allowed', false)
    const key = jwks.keyNow(kid, alg) ?? await jwks.getKey(kid, alg)
    return verifierFor(key, alg)(token)
  }
}

function rejection (error: unknown): TokenRejection {
  const err = error as { code?: string, message?: string, originalError?: unknown, cause?: unknown }
  const inner = error instanceof JwksKeyError ? error : err.originalError ?? err.cause
  if (inner instanceof JwksKeyError) {
    return new TokenRejection(inner.unavailable ? 'unavailable' : 'invalid', inner.message, { cause: inner })
  }
  if (err.code === 'FAST_JWT_EXPIRED') return new TokenRejection('expired', 'token expired', { cause: error })
  return new TokenRejection('invalid', err.message ?? 'invalid token', { cause: error })
}
