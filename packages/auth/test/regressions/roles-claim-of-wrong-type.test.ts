import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, ISSUER, SECRET, signHmac } from '../helpers/index.js'

t.test('a roles or permissions claim of the wrong type counts as none (403), never a 500', async (t) => {
  const { app } = await buildApp(t, { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE }, identityHeaders: { 'x-user-roles': 'roles' } })
  const cases: Array<[string, unknown, unknown, number]> = [
    ['object roles', { admin: true }, ['posts:moderate'], 403],
    ['number roles', 42, ['posts:moderate'], 403],
    ['boolean roles', true, ['posts:moderate'], 403],
    ['null roles', null, ['posts:moderate'], 403],
    ['object permissions', ['admin'], { 'posts:moderate': true }, 403],
    ['nested list', [['admin']], ['posts:moderate'], 403],
    ['non-strings ignored, admin kept', [1, {}, null, 'admin'], ['posts:moderate', 7], 200],
    ['single strings', 'admin', 'posts:moderate', 200]
  ]
  for (const [name, roles, permissions, status] of cases) {
    const res = await app.inject({ url: '/admin', headers: bearer(signHmac(SECRET, claims('x', { roles, permissions }))) })
    t.equal(res.statusCode, status, name)
  }
  const res = await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('x', { roles: { admin: true } }))) })
  t.equal(res.statusCode, 200)
  t.equal(res.json().headers['x-user-roles'], '', 'no role names: an empty header, not "[object Object]"')
})
