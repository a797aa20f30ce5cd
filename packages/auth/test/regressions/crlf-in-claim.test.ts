import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, ISSUER, SECRET, signHmac } from '../helpers/index.js'

t.test('CR, LF, NUL or padding whitespace in a claim that feeds an identity header makes the token invalid (401)', async (t) => {
  const { app, failures } = await buildApp(t, {
    jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles', 'x-user-email': 'email' }
  })
  const cases: Record<string, Record<string, unknown>> = {
    'CRLF in sub': { sub: 'alice\r\nx-admin: true' },
    'LF in a role': { roles: ['user', 'admin\nx-admin: true'] },
    'CR in email': { email: 'a@b.c\rx' },
    'NUL in sub': { sub: 'alice\u0000' }
  }
  for (const [name, extra] of Object.entries(cases)) {
    const res = await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('alice', extra))) })
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
  }
  t.same(new Set(failures.map((f) => f.reason)), new Set(['invalid']))
  const comma = await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('alice', { roles: ['user,admin'] }))) })
  t.equal(comma.statusCode, 401, 'a comma inside one role would be split into two by the upstream')
  // The upstream reads header values trimmed: these would reach it as another identity
  // than the one this gateway checked (" admin" is not the admin role here, but would be there).
  const padded: Record<string, Record<string, unknown>> = {
    'a role with a leading space': { roles: ['user', ' admin'] },
    'a sub with a trailing space': { sub: 'alice ' },
    'a sub of spaces only': { sub: '   ' },
    'a tab-padded email': { email: '\talice@example.com' },
    'a role ending in a no-break space': { roles: ['admin\u00a0'] }
  }
  for (const [name, extra] of Object.entries(padded)) {
    const res = await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('alice', extra))) })
    t.equal(res.statusCode, 401, name)
  }
  const ok = await app.inject({ url: '/protected', headers: bearer(signHmac(SECRET, claims('alice', { email: 'alice@example.com' }))) })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().headers['x-user-email'], 'alice@example.com')
})
