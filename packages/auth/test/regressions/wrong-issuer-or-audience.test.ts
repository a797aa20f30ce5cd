import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, ISSUER, SECRET, signHmac } from '../helpers/index.js'

t.test('a token from another issuer or for another audience is refused', async (t) => {
  const { app } = await buildApp(t, { jwt: { secret: SECRET, issuer: ISSUER, audience: [AUDIENCE, 'other-api'] } })
  const cases: Record<string, Record<string, unknown>> = {
    'wrong iss': { iss: 'evil-auth' },
    'missing iss': { iss: undefined },
    'wrong aud': { aud: 'billing-api' },
    'missing aud': { aud: undefined },
    'aud list without ours': { aud: ['a', 'b'] }
  }
  for (const [name, extra] of Object.entries(cases)) {
    const res = await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('alice', extra))) })
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
  }
  t.equal((await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('alice', { aud: ['x', 'other-api'] }))) })).statusCode, 200, 'any listed audience')
})
