// The RS256 key pair and token of the JWT configurations: the JWKS server (lib/upstream.mjs)
// publishes the public half, the load generator sends a token signed with the private half.
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import jwt from 'jsonwebtoken'
import { JWT_CLAIMS } from './configs.mjs'

/** A fresh key pair: { jwks (the JSON the JWKS server serves), token, publicKeyPem }. */
export function benchCredentials () {
  const kid = `bench-${randomUUID()}`
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }
  const token = jwt.sign({ roles: JWT_CLAIMS.roles }, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    algorithm: 'RS256',
    keyid: kid,
    issuer: JWT_CLAIMS.issuer,
    audience: JWT_CLAIMS.audience,
    subject: JWT_CLAIMS.subject,
    expiresIn: '3h'
  })
  return { jwks: JSON.stringify({ keys: [publicJwk] }), token, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) }
}
