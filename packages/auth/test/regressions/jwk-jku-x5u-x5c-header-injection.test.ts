import t from 'tap'
import Fastify from 'fastify'
import { createPublicKey, X509Certificate } from 'node:crypto'
import { AUDIENCE, bearer, buildApp, claims, ISSUER, jwksServer, makeKey, signWith } from '../helpers/index.js'

// The key must come from configuration, never from the token's own header.
const trusted = makeKey('rsa', 'trusted')
const attacker = makeKey('rsa', 'trusted')

t.test('jwk, jku, x5u and x5c token headers are ignored: the attacker key is never used or fetched', async (t) => {
  const jwks = await jwksServer(t, [trusted])
  let attackerHits = 0
  const evil = Fastify()
  evil.get('/*', async () => { attackerHits++; return { keys: [attacker.jwk] } })
  await evil.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => evil.close())
  const evilUrl = `http://127.0.0.1:${(evil.server.address() as { port: number }).port}/jwks.json`

  for (const [source, jwt] of Object.entries({ publicKey: { publicKey: trusted.publicPem }, jwks: { jwksUrl: jwks.url } })) {
    const { app } = await buildApp(t, { jwt: { ...jwt, issuer: ISSUER, audience: AUDIENCE } })
    const headers: Record<string, Record<string, unknown>> = {
      jwk: { jwk: createPublicKey(attacker.publicPem).export({ format: 'jwk' }) },
      jku: { jku: evilUrl },
      x5u: { x5u: evilUrl },
      x5c: { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }
    }
    for (const [name, header] of Object.entries(headers)) {
      for (const kid of ['trusted', undefined]) {
        const token = signWith(attacker, claims('admin', { roles: ['admin'] }), header, 'RS256', kid)
        const res = await app.inject({ url: '/protected', headers: bearer(token) })
        t.equal(res.statusCode, 401, `${source}: ${name} header, kid ${String(kid)}`)
      }
    }
    const genuine = signWith(trusted, claims('alice'), { jku: evilUrl })
    t.equal((await app.inject({ url: '/protected', headers: bearer(genuine) })).statusCode, 200, `${source}: a genuine token with a jku header still verifies with the configured key`)
  }
  t.equal(attackerHits, 0, 'the attacker URL was never fetched')
  t.ok(X509Certificate, 'x5c is never parsed into a key')
})
