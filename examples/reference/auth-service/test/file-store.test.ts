import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { MemoryStore } from '../src/store/index.js'
import { behaviour, call, decode, start } from './helpers/suite.js'

t.test('the same behaviour over a DATA_FILE store', async (t) => {
  const dir = t.testdir()
  let n = 0
  behaviour(t, () => new MemoryStore(join(dir, `data-${++n}.json`)))
})

t.test('users and sessions survive a restart; writes leave no temporary files', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'nested', 'auth.json')
  const first = await start(t, new MemoryStore(file))
  await call(first.url, '/api/auth/register', { body: { email: 'keep@example.test', password: 'correct horse' } })
  const login = await call(first.url, '/api/auth/login', { body: { email: 'keep@example.test', password: 'correct horse' } })
  await first.close()

  const text = await readFile(file, 'utf8')
  t.notMatch(text, 'correct horse', 'no clear password on disk')
  t.notMatch(text, login.body.refreshToken, 'no clear refresh token on disk')
  t.same((await readdir(join(dir, 'nested'))).filter((name) => name.endsWith('.tmp')), [])

  const second = await start(t, new MemoryStore(file))
  t.equal((await call(second.url, '/api/auth/login', { body: { email: 'keep@example.test', password: 'correct horse' } })).status, 200)
  t.equal((await call(second.url, '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } })).status, 200)
  t.equal((await call(second.url, '/api/auth/register', { body: { email: 'keep@example.test', password: 'correct horse' } })).status, 409)
})

t.test('an account registered before its address was listed in ADMIN_EMAILS stays a user after the restart', async (t) => {
  const file = join(t.testdir(), 'auth.json')
  const before = await start(t, new MemoryStore(file))
  t.equal((await call(before.url, '/api/auth/register', { body: { email: 'early@example.test', password: 'correct horse' } })).status, 201)
  await before.close()
  const after = await start(t, new MemoryStore(file), ['early@example.test'])
  const login = await call(after.url, '/api/auth/login', { body: { email: 'early@example.test', password: 'correct horse' } })
  t.equal(login.status, 200)
  t.match(decode(login.body.accessToken).payload, { roles: ['user'], permissions: [] })
})

t.test('a corrupt data file stops startup instead of starting empty', async (t) => {
  const dir = t.testdir({ 'bad.json': '{"version": 1, "users": [' })
  await t.rejects(new MemoryStore(join(dir, 'bad.json')).init())
})
