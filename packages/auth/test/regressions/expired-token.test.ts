import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, clock, ISSUER, SECRET, signHmac } from '../helpers/index.js'

t.test('an expired token is refused, also when it was accepted before its exp', async (t) => {
  const time = clock()
  const { app, failures } = await buildApp(t, { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE }, now: time.now })
  const expired = signHmac(SECRET, claims('alice', {}, time.now() - 3_601_000))
  const res = await app.inject({ url: '/protected', headers: bearer(expired) })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
  t.equal(res.json().code, 'TOLLGATE_AUTH_TOKEN_EXPIRED')

  const shortLived = signHmac(SECRET, claims('alice', { exp: Math.floor(time.now() / 1000) + 2 }))
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/protected', headers: bearer(shortLived) })).statusCode, 200)
  time.advance(3_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(shortLived) })).statusCode, 401)
  t.same(failures.map((f) => f.reason), ['expired', 'expired'])
})
