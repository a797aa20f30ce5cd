import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, ISSUER, jwksServer, makeKey, SECRET, unsigned } from '../helpers/index.js'
import { resolveOptions } from '../../src/index.js'

const rsa = makeKey('rsa', 'k1')

t.test('unsigned tokens with alg none in every casing are refused (secret, PEM and JWKS sources)', async (t) => {
  const jwks = await jwksServer(t, [rsa])
  const sources = {
    secret: { secret: SECRET },
    publicKey: { publicKey: rsa.publicPem },
    jwks: { jwksUrl: jwks.url }
  }
  for (const [name, source] of Object.entries(sources)) {
    const { app } = await buildApp(t, { jwt: { ...source, issuer: ISSUER, audience: AUDIENCE } })
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const res = await app.inject({ url: '/protected', headers: bearer(unsigned(claims('admin'), alg)) })
      t.equal(res.statusCode, 401, `${name}: ${alg}`)
      t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
    }
  }
})

t.test('"none" cannot be configured in algorithms, in any casing', async (t) => {
  for (const alg of ['none', 'None', 'NONE']) {
    t.throws(() => resolveOptions({ jwt: { secret: SECRET, algorithms: ['HS256', alg] } }), /jwt\.algorithms: "none" is never allowed/)
  }
})
