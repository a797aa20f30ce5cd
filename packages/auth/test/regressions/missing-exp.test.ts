import t from 'tap'
import { AUDIENCE, b64, bearer, buildApp, claims, hmacToken, ISSUER, SECRET, signHmac } from '../helpers/index.js'

t.test('a token without exp is refused with 401 invalid_token', async (t) => {
  const { app, failures } = await buildApp(t, { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } })
  const res = await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('alice', { exp: undefined }))) })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
  t.same(failures, [{ route: '/protected', reason: 'invalid' }])
  for (const exp of ['9999999999', null, {}, [9999999999]]) {
    const token = hmacToken(SECRET, { alg: 'HS256', typ: 'JWT' }, b64(claims('alice', { exp })))
    const bad = await app.inject({ url: '/protected', headers: bearer(token) })
    t.equal(bad.statusCode, 401, `exp ${JSON.stringify(exp)}`)
  }
})
