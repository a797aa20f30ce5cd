import { randomBytes, randomUUID, sign, verify } from 'node:crypto'
import type { SigningKey } from './keys.js'

export interface AccessClaims {
  sub: string
  email: string
  roles: string[]
  permissions: string[]
  /** The refresh-token family (session) this token was issued in. */
  sid: string
  iss: string
  aud: string
  iat: number
  exp: number
  jti: string
}

export interface TokenSettings {
  key: SigningKey
  issuer: string
  audience: string
  /** Seconds. */
  ttl: number
}

const HEADER_CACHE = new WeakMap<SigningKey, string>()

function encodedHeader (key: SigningKey): string {
  let header = HEADER_CACHE.get(key)
  if (header === undefined) {
    header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: key.kid })).toString('base64url')
    HEADER_CACHE.set(key, header)
  }
  return header
}

/** Signs an RS256 JWT; `now` is in milliseconds. */
export function signAccessToken (settings: TokenSettings, subject: Pick<AccessClaims, 'sub' | 'email' | 'roles' | 'permissions' | 'sid'>, now: number): { token: string, claims: AccessClaims } {
  const iat = Math.floor(now / 1000)
  const claims: AccessClaims = {
    ...subject,
    iss: settings.issuer,
    aud: settings.audience,
    iat,
    exp: iat + settings.ttl,
    jti: randomUUID()
  }
  const input = `${encodedHeader(settings.key)}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const signature = sign('sha256', Buffer.from(input), settings.key.privateKey).toString('base64url')
  return { token: `${input}.${signature}`, claims }
}

function parseJson (segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}

function isStringList (value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

/**
 * Verifies signature, algorithm, key id, issuer, audience, expiry and claim shapes.
 * Returns the claims, or null for any token that is not one of ours and current.
 */
export function verifyAccessToken (settings: TokenSettings, token: string, now: number): AccessClaims | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string]
  const header = parseJson(headerPart) as { alg?: unknown, kid?: unknown } | undefined
  if (header === undefined || header === null || header.alg !== 'RS256' || header.kid !== settings.key.kid) return null
  const valid = verify('sha256', Buffer.from(`${headerPart}.${payloadPart}`), settings.key.publicKey, Buffer.from(signaturePart, 'base64url'))
  if (!valid) return null
  const claims = parseJson(payloadPart) as Partial<AccessClaims> | undefined
  if (claims === undefined || claims === null || typeof claims !== 'object') return null
  const seconds = Math.floor(now / 1000)
  if (claims.iss !== settings.issuer || claims.aud !== settings.audience) return null
  if (typeof claims.exp !== 'number' || claims.exp <= seconds) return null
  if (typeof claims.iat !== 'number' || claims.iat > seconds + 5) return null
  if (typeof claims.sub !== 'string' || typeof claims.email !== 'string' || typeof claims.sid !== 'string' || typeof claims.jti !== 'string') return null
  if (!isStringList(claims.roles) || !isStringList(claims.permissions)) return null
  return claims as AccessClaims
}

/** An opaque refresh token: 256 random bits. Only its SHA-256 is stored. */
export function newRefreshToken (): string {
  return randomBytes(32).toString('base64url')
}
