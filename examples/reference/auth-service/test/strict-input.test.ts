import t from 'tap'
import { MemoryStore } from '../src/store/index.js'
import { call, email, start } from './helpers/suite.js'

t.test('bodies are taken as sent: no type coercion, unknown fields refused', async (t) => {
  const { url } = await start(t, new MemoryStore())
  const refused = async (path: string, body: unknown, message: string): Promise<void> => {
    const answer = await call(url, path, { body })
    t.equal(answer.status, 400, `${path} ${JSON.stringify(body)}`)
    t.match(answer.body, { statusCode: 400, error: 'Bad Request', message })
  }
  const address = email()
  await refused('/api/auth/register', { email: address, password: 12345678 }, 'body/password must be string')
  await refused('/api/auth/register', { email: address, password: ['correct horse'] }, 'body/password must be string')
  await refused('/api/auth/register', { email: [address], password: 'correct horse' }, 'body/email must be string')
  await refused('/api/auth/register', { email: address, password: 'correct horse', role: 'admin' }, 'body must NOT have additional properties')
  await refused('/api/auth/register', { email: address, password: 'correct horse', roles: ['admin'] }, 'body must NOT have additional properties')
  await refused('/api/auth/register', [address, 'correct horse'], 'body must be object')
  t.equal((await call(url, '/api/auth/login', { body: { email: address, password: 'correct horse' } })).status, 401, 'none of them registered the address')

  t.equal((await call(url, '/api/auth/register', { body: { email: address, password: '12345678' } })).status, 201, 'the same digits as a string are a password')
  await refused('/api/auth/login', { email: address, password: 12345678 }, 'body/password must be string')
  await refused('/api/auth/login', { email: address, password: '12345678', remember: true }, 'body must NOT have additional properties')
  const login = await call(url, '/api/auth/login', { body: { email: address, password: '12345678' } })
  t.equal(login.status, 200)
  await refused('/api/auth/refresh', { refreshToken: 1 }, 'body/refreshToken must be string')
  await refused('/api/auth/refresh', { refreshToken: login.body.refreshToken, extra: 1 }, 'body must NOT have additional properties')
  await refused('/api/auth/logout', { refreshToken: [login.body.refreshToken] }, 'body/refreshToken must be string')
  t.equal((await call(url, '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } })).status, 200, 'the refresh token was not used up by a refused request')
})
