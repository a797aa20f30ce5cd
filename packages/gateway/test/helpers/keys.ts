import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSigner } from 'fast-jwt'

export interface SigningKey { kid: string, alg: 'RS256' | 'ES256', privateKey: KeyObject, jwk: Record<string, unknown> }

export function signingKey (alg: 'RS256' | 'ES256' = 'RS256'): SigningKey {
  const { privateKey, publicKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const kid = randomUUID()
  return { kid, alg, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } }
}

/** Signs a token with `key`; `claims` override the defaults (iss, aud, sub, a 5 minute exp). */
export function sign (key: SigningKey, claims: Record<string, unknown> = {}): string {
  const signer = createSigner({ key: key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, algorithm: key.alg, kid: key.kid })
  const now = Math.floor(Date.now() / 1000)
  return signer({ iss: 'example-auth', aud: 'example-api', sub: 'user-1', roles: ['user'], iat: now, exp: now + 300, ...claims })
}

export interface JwksServer { url: string, keys: SigningKey[], hits: number, close: () => Promise<void> }

/** A real JWKS endpoint over HTTP serving the public half of `keys` (mutable, for rotation). */
export async function jwksServer (keys: SigningKey[]): Promise<JwksServer> {
  const state: JwksServer = { url: '', keys, hits: 0, close: async () => {} }
  const server: Server = createServer((_request, response) => {
    state.hits++
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys.map((key) => key.jwk) }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
  state.close = async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  }
  return state
}
