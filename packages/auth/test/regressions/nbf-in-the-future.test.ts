import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, clock, ISSUER, SECRET, signHmac } from '../helpers/index.js'

t.test('a token not yet valid (nbf) is refused until nbf minus clockTolerance', async (t) => {
  const time = clock()
  const { app } = await buildApp(t, { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE, clockTolerance: '5s' }, now: time.now })
  const nbf = Math.floor(time.now() / 1000) + 600
  const token = signHmac(SECRET, claims('alice', { nbf, exp: nbf + 3600 }))
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
  // fast-jwt checks nbf with the wall clock too, so only a token near "now" can show the tolerance.
  const soon = Math.floor(Date.now() / 1000) + 3
  const nearly = signHmac(SECRET, claims('alice', { nbf: soon }))
  time.set(soon * 1000 - 10_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(nearly) })).statusCode, 401, 'too early')
  time.set(soon * 1000 - 4_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(nearly) })).statusCode, 200, 'within tolerance')
})
