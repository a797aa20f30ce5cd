import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { PostgresStore } from '../src/store/index.js'
import { behaviour, call, start } from './helpers/suite.js'

// Needs the PostgreSQL of the CI machine (127.0.0.1:5432, trust auth, database "test").
// Fails, never skips, when it is missing. TEST_DATABASE_URL points elsewhere.
const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const schema = `auth_test_${process.pid}_${randomBytes(4).toString('hex')}`

const admin = new pg.Client({ connectionString: url })
try {
  await admin.connect()
} catch (error) {
  throw new Error(`PostgreSQL is not reachable at ${url} (set TEST_DATABASE_URL): ${(error as Error).message}`)
}
t.teardown(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await admin.end()
})

behaviour(t, () => new PostgresStore(url, schema))

t.test('tables are created once and reused by a second process on the same schema', async (t) => {
  const first = await start(t, new PostgresStore(url, schema))
  await call(first.url, '/api/auth/register', { body: { email: 'pg-restart@example.test', password: 'correct horse' } })
  await first.close()
  const second = await start(t, new PostgresStore(url, schema))
  t.equal((await call(second.url, '/api/auth/login', { body: { email: 'pg-restart@example.test', password: 'correct horse' } })).status, 200)
  const tables = await admin.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema])
  t.same(tables.rows.map((row: { table_name: string }) => row.table_name), ['refresh_tokens', 'sessions', 'users'])
})

t.test('concurrent exchanges of one refresh token: at most one wins, and the family is revoked', async (t) => {
  const { url: base } = await start(t, new PostgresStore(url, schema))
  await call(base, '/api/auth/register', { body: { email: 'pg-race@example.test', password: 'correct horse' } })
  const login = await call(base, '/api/auth/login', { body: { email: 'pg-race@example.test', password: 'correct horse' } })
  const results = await Promise.all(Array.from({ length: 5 }, () => call(base, '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } })))
  const winners = results.filter((result) => result.status === 200)
  t.ok(winners.length <= 1, 'never two successors')
  t.equal(results.filter((result) => result.status === 401).length, results.length - winners.length)
  for (const winner of winners) {
    t.equal((await call(base, '/api/auth/refresh', { body: { refreshToken: winner.body.refreshToken } })).status, 401, 'the reuse revoked the family')
  }
})
