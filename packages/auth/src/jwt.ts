import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance } from 'fastify'
import { JwksKeyError, type JwksStore } from './jwks.js'
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
 * Builds the token verifier on @fastify/jwt, registered in a private child scope so
 * that it claims neither `fastify.jwt` nor `request.user` in the user's app.
 *
 * The key always comes from configuration (a secret, a PEM key, or the configured
 * JWKS by `kid`): `jwk`, `jku`, `x5u` and `x5c` headers are never read. fast-jwt checks
 * the signature against the algorithm allow-list, `iss`, `aud`, `exp`, `nbf`; on top of
 * it `exp` is required, the payload must be an object, and `exp`/`nbf` are checked
 * again against the plugin's clock (`now`), so no token outlives its `exp`.
 */
export async function createTokenVerifier (fastify: FastifyInstance, jwt: ResolvedJwt, store: JwksStore | undefined, now: () => number): Promise<VerifyToken> {
  let secret: string | ((decoded: DecodedJwt) => Promise<string>)
  if (jwt.source === 'secret') {
    secret = jwt.secret as string
  } else if (jwt.source === 'publicKey') {
    secret = jwt.publicKeyPem as string
  } else {
    const jwks = store as JwksStore
    secret = async (decoded: DecodedJwt): Promise<string> => {
      const { kid, alg } = decoded.header
      if (kid !== undefined && typeof kid !== 'string') throw new JwksKeyError('kid must be a string', false)
      if (typeof alg !== 'string' || !jwt.algorithms.includes(alg as never)) throw new JwksKeyError('algorithm not allowed', false)
      return (await jwks.getKey(kid, alg)).pem
    }
  }

  let verify: ((token: string) => unknown) | undefined
  await fastify.register(async function tollgateJwtScope (child) {
    await child.register(fastifyJwt, {
      // Verify-only: { public } without { private } creates no signer.
      secret: { public: secret },
      verify: {
        algorithms: [...jwt.algorithms],
        ...(jwt.issuer === undefined ? {} : { allowedIss: [...jwt.issuer] }),
        ...(jwt.audience === undefined ? {} : { allowedAud: [...jwt.audience] }),
        clockTolerance: jwt.clockToleranceMs,
        // fast-jwt skips an iss/aud check when the claim is absent: require them when configured.
        requiredClaims: ['exp', ...(jwt.issuer === undefined ? [] : ['iss']), ...(jwt.audience === undefined ? [] : ['aud'])],
        cache: false
      }
    })
    const api = child.jwt
    verify = (token) => api.verify(token)
  })
  const verifyWithJwt = verify as (token: string) => unknown

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
    if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw new TokenRejection('invalid', 'sub must be a non-empty string')
    return claims
  }
}

function rejection (error: unknown): TokenRejection {
  const err = error as { code?: string, message?: string, originalError?: unknown, cause?: unknown }
  const inner = err.originalError ?? err.cause
  if (inner instanceof JwksKeyError) {
    return new TokenRejection(inner.unavailable ? 'unavailable' : 'invalid', inner.message, { cause: inner })
  }
  if (err.code === 'FAST_JWT_EXPIRED') return new TokenRejection('expired', 'token expired', { cause: error })
  return new TokenRejection('invalid', err.message ?? 'invalid token', { cause: error })
}
