import t from 'tap'
import { createPublicKey } from 'node:crypto'
import { AUDIENCE, bearer, buildApp, claims, hmacToken, b64, ISSUER, jwksServer, makeKey } from '../helpers/index.js'
import { resolveOptions } from '../../src/index.js'

// The classic algorithm confusion: the attacker knows the public key and signs HS256 with it.
const rsa = makeKey('rsa', 'k1')
const pkcs1 = createPublicKey(rsa.publicPem).export({ type: 'pkcs1', format: 'pem' }).toString()
const variants: Record<string, string | Buffer> = {
  'SPKI PEM': rsa.publicPem,
  'SPKI PEM without trailing newline': rsa.publicPem.trimEnd(),
  'SPKI PEM with CRLF': rsa.publicPem.replace(/\n/g, '\r\n'),
  'PKCS#1 PEM': pkcs1,
  'DER bytes': createPublicKey(rsa.publicPem).export({ type: 'spki', format: 'der' }),
  'JWK JSON': JSON.stringify(rsa.jwk),
  'JWK JSON without kid/alg': JSON.stringify(createPublicKey(rsa.publicPem).export({ format: 'jwk' }))
}

t.test('HS256/384/512 tokens signed with the public key (PEM in all its forms, JWK JSON) are refused', async (t) => {
  const jwks = await jwksServer(t, [rsa])
  for (const [source, jwt] of Object.entries({ publicKey: { publicKey: rsa.publicPem }, jwks: { jwksUrl: jwks.url } })) {
    const { app } = await buildApp(t, { jwt: { ...jwt, issuer: ISSUER, audience: AUDIENCE } })
    for (const [name, key] of Object.entries(variants)) {
      for (const [alg, hash] of [['HS256', 'sha256'], ['HS384', 'sha384'], ['HS512', 'sha512']] as const) {
        const token = hmacToken(key, { alg, typ: 'JWT', kid: 'k1' }, b64(claims('admin', { roles: ['admin'] })), hash)
        const res = await app.inject({ url: '/protected', headers: bearer(token) })
        t.equal(res.statusCode, 401, `${source}, ${name}, ${alg}`)
      }
    }
  }
})

t.test('a secret that is really a public key (PEM or JWK) is refused at registration', async (t) => {
  t.throws(() => resolveOptions({ jwt: { secret: rsa.publicPem } }), /jwt\.secret: looks like a public key/)
  t.throws(() => resolveOptions({ jwt: { secret: JSON.stringify(rsa.jwk) } }), /jwt\.secret: looks like a public key/)
})

t.test('HS algorithms cannot be configured with a public key or a JWKS', async (t) => {
  t.throws(() => resolveOptions({ jwt: { publicKey: rsa.publicPem, algorithms: ['RS256', 'HS256'] } }), /jwt\.algorithms: HS256 cannot be used with this rsa public key/)
  t.throws(() => resolveOptions({ jwt: { jwksUrl: 'http://127.0.0.1:1/jwks.json', algorithms: ['HS256'] } }), /jwt\.algorithms: HS256 cannot be used with jwt\.jwksUrl/)
})
