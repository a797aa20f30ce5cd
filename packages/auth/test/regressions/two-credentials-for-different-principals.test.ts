import t from 'tap'
import Fastify from 'fastify'
import tollgateAuth from '../../src/index.js'
import { AUDIENCE, bearer, buildApp, claims, echo, ISSUER, listen, PARTNER_KEY, rawRequest, SECRET, sha256, signHmac } from '../helpers/index.js'

const options = {
  jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
  apiKeys: { keys: [{ id: 'reporting-partner', sha256: sha256(PARTNER_KEY), roles: ['partner'] }] }
}

t.test('a token and an API key of different principals are refused (401), never "first valid wins"', async (t) => {
  const { app, failures } = await buildApp(t, options)
  const res = await app.inject({ url: '/protected', headers: { ...bearer(signHmac(SECRET, claims('alice'))), 'x-api-key': PARTNER_KEY } })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOLLGATE_AUTH_CONFLICTING_CREDENTIALS')
  t.same(failures, [{ route: '/protected', reason: 'invalid' }])
})

t.test('a valid credential next to an invalid one is refused', async (t) => {
  const { app } = await buildApp(t, options)
  const validToken = signHmac(SECRET, claims('reporting-partner'))
  t.equal((await app.inject({ url: '/protected', headers: { ...bearer(validToken), 'x-api-key': 'wrong' } })).statusCode, 401)
  t.equal((await app.inject({ url: '/protected', headers: { ...bearer('bad.token.here'), 'x-api-key': PARTNER_KEY } })).statusCode, 401)
})

t.test('two Authorization headers are refused with 400, even when both are valid', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tollgateAuth, options)
  app.get('/protected', echo)
  const port = await listen(app)
  const alice = signHmac(SECRET, claims('alice'))
  const mallory = signHmac(SECRET, claims('mallory'))
  for (const [name, second] of [['different principals', mallory], ['same token twice', alice]] as const) {
    const res = await rawRequest(port, `GET /protected HTTP/1.1\nHost: x\nAuthorization: Bearer ${alice}\nauthorization: Bearer ${second}`)
    t.equal(res.status, 400, name)
    t.equal(JSON.parse(res.body).code, 'TOLLGATE_AUTH_AMBIGUOUS_CREDENTIALS')
  }
})
