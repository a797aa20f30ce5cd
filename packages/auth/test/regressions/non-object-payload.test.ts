import t from 'tap'
import { AUDIENCE, b64, bearer, buildApp, hmacToken, ISSUER, SECRET } from '../helpers/index.js'

t.test('a validly signed token whose payload is not a JSON object is refused, never a 500', async (t) => {
  const { app } = await buildApp(t, { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } })
  const payloads: Record<string, string> = {
    string: b64(JSON.stringify('alice')),
    number: b64('42'),
    array: b64([{ sub: 'alice', exp: 9999999999 }]),
    null: b64('null'),
    'not JSON': b64('sub=alice'),
    empty: ''
  }
  for (const [name, segment] of Object.entries(payloads)) {
    const res = await app.inject({ url: '/protected', headers: bearer(hmacToken(SECRET, { alg: 'HS256', typ: 'JWT' }, segment)) })
    t.equal(res.statusCode, 401, name)
  }
})
