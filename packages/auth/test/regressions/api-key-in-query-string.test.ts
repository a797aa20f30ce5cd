import t from 'tap'
import { buildApp, PARTNER_KEY, sha256 } from '../helpers/index.js'

const keys = [{ id: 'reporting-partner', sha256: sha256(PARTNER_KEY), roles: ['partner'] }]

t.test('an API key in the query string is not accepted unless configured', async (t) => {
  const { app } = await buildApp(t, { apiKeys: { keys } })
  for (const param of ['api_key', 'apikey', 'apiKey', 'key', 'x-api-key', 'token']) {
    const res = await app.inject({ url: `/protected?${param}=${PARTNER_KEY}` })
    t.equal(res.statusCode, 401, param)
    t.equal(res.json().code, 'TOLLGATE_AUTH_MISSING_CREDENTIALS')
  }
})

t.test('with apiKeys.query configured the parameter is accepted, and stripCredentials removes it from the URL', async (t) => {
  const { app } = await buildApp(t, { apiKeys: { keys, query: 'api_key' } })
  const res = await app.inject({ url: `/strip?a=1&api_key=${PARTNER_KEY}&b=%20x` })
  t.equal(res.statusCode, 200)
  t.equal(res.json().identity.id, 'reporting-partner')
  t.equal(res.json().url, '/strip?a=1&b=%20x')
  t.equal((await app.inject({ url: '/protected?api_key=wrong' })).statusCode, 401)
  t.equal((await app.inject({ url: `/protected?api_key=${PARTNER_KEY}&api_key=${PARTNER_KEY}` })).statusCode, 401, 'repeated parameter')
})
