import t from 'tap'
import { parseSeconds, resolveConfig } from '../src/config.js'
import { hashPassword, verifyPassword } from '../src/password.js'

t.test('durations in seconds', async (t) => {
  t.equal(parseSeconds('15m', 'X'), 900)
  t.equal(parseSeconds('900', 'X'), 900)
  t.equal(parseSeconds('7d', 'X'), 604800)
  t.throws(() => parseSeconds('soon', 'ACCESS_TOKEN_TTL'), /ACCESS_TOKEN_TTL/)
  t.throws(() => parseSeconds('0', 'X'))
})

t.test('configuration from the environment', async (t) => {
  const defaults = resolveConfig({})
  t.match(defaults, { port: 3001, accessTokenTtl: 900, issuer: 'example-auth', audience: 'example-api', databaseUrl: undefined, databaseSchema: 'public' })
  const custom = resolveConfig({ PORT: '0', ADMIN_EMAILS: ' Admin@Example.com ,x@y.z', ADMIN_PASSWORD: 'long enough', ACCESS_TOKEN_TTL: '60', DATABASE_URL: 'postgres://u@h/db' })
  t.equal(custom.port, 0)
  t.same([...custom.adminEmails], ['admin@example.com', 'x@y.z'])
  t.equal(custom.adminPassword, 'long enough')
  t.throws(() => resolveConfig({ ADMIN_EMAILS: 'admin@example.com' }), /ADMIN_EMAILS needs ADMIN_PASSWORD/)
  t.throws(() => resolveConfig({ ADMIN_EMAILS: 'admin@example.com', ADMIN_PASSWORD: 'short' }), /at least 8/)
  t.equal(custom.accessTokenTtl, 60)
  t.throws(() => resolveConfig({ DATABASE_URL: 'mysql://h/db' }), /DATABASE_URL/)
  t.throws(() => resolveConfig({ PORT: '70000' }), /PORT/)
  t.throws(() => resolveConfig({ DATABASE_SCHEMA: 'x; drop' }), /DATABASE_SCHEMA/)
})

t.test('scrypt hashes carry a per-user salt and verify in constant time', async (t) => {
  const a = await hashPassword('correct horse')
  const b = await hashPassword('correct horse')
  t.match(a, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/)
  t.not(a, b, 'same password, different salts')
  t.ok(await verifyPassword('correct horse', a))
  t.notOk(await verifyPassword('correct horsf', a))
  t.notOk(await verifyPassword('correct horse', 'plain'))
})
