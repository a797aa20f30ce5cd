import { createPublicKey, verify } from 'node:crypto'
import type { Test } from 'tap'
import { buildAuthApp } from '../../src/app.js'
import { generateSigningKey } from '../../src/keys.js'
import type { Store } from '../../src/store/index.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are read loosely in tests
type Loose = any

export const key = generateSigningKey()
export const ADMIN_PASSWORD = 'admin password'

export interface Running {
  url: string
  clock: { now: number }
  close: () => Promise<void>
}

/** Starts the auth app over a store on 127.0.0.1, port 0, with a movable clock. */
export async function start (t: Test, store: Store, adminEmails: string[] = []): Promise<Running> {
  await store.init()
  const clock = { now: Date.now() }
  const app = await buildAuthApp({
    config: { accessTokenTtl: 900, refreshTokenTtl: 7 * 86400, issuer: 'example-auth', audience: 'example-api', adminEmails: new Set(adminEmails), adminPassword: ADMIN_PASSWORD },
    store,
    key,
    now: () => clock.now
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await app.close()
  }
  t.teardown(close)
  return { url: `http://127.0.0.1:${address.port}`, clock, close }
}

export async function call (url: string, path: string, init: { method?: string, body?: unknown, token?: string } = {}): Promise<{ status: number, headers: Headers, body: Loose }> {
  const headers: Record<string, string> = {}
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
  const response = await fetch(url + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) }
}

export function decode (token: string): { header: Loose, payload: Loose } {
  const [header, payload] = token.split('.')
  return { header: JSON.parse(Buffer.from(header!, 'base64url').toString()), payload: JSON.parse(Buffer.from(payload!, 'base64url').toString()) }
}

let counter = 0
export function email (): string {
  counter += 1
  return `user${counter}.${process.pid}.${Date.now()}@example.test`
}

/** The service's behaviour, identical over every store. */
export function behaviour (t: Test, makeStore: () => Store): void {
  t.test('registration validates input, hashes nothing twice the same and refuses duplicates', async (t) => {
    const { url } = await start(t, makeStore())
    const address = email()
    const created = await call(url, '/api/auth/register', { body: { email: address, password: 'correct horse' } })
    t.equal(created.status, 201)
    t.equal(created.body.email, address)
    t.type(created.body.id, 'string')
    t.notOk('passwordHash' in created.body)
    const duplicate = await call(url, '/api/auth/register', { body: { email: address.toUpperCase(), password: 'another one' } })
    t.equal(duplicate.status, 409, 'e-mails are compared case-insensitively')
    t.equal((await call(url, '/api/auth/register', { body: { email: 'not-an-email', password: 'correct horse' } })).status, 400)
    t.equal((await call(url, '/api/auth/register', { body: { email: email(), password: 'short' } })).status, 400)
    t.equal((await call(url, '/api/auth/register', { body: { email: email() } })).status, 400)
  })

  t.test('login issues an RS256 access token verifiable with the JWKS, and a refresh token', async (t) => {
    const { url } = await start(t, makeStore())
    const address = email()
    await call(url, '/api/auth/register', { body: { email: address, password: 'correct horse' } })
    t.equal((await call(url, '/api/auth/login', { body: { email: address, password: 'wrong horse!' } })).status, 401)
    t.equal((await call(url, '/api/auth/login', { body: { email: email(), password: 'correct horse' } })).status, 401)
    const login = await call(url, '/api/auth/login', { body: { email: address, password: 'correct horse' } })
    t.equal(login.status, 200)
    t.equal(login.body.tokenType, 'Bearer')
    t.equal(login.body.expiresIn, 900)
    t.type(login.body.refreshToken, 'string')
    const { header, payload } = decode(login.body.accessToken)
    t.match(header, { alg: 'RS256', typ: 'JWT' })
    t.match(payload, { email: address, roles: ['user'], permissions: [], iss: 'example-auth', aud: 'example-api' })
    t.equal(payload.exp - payload.iat, 900)
    t.type(payload.jti, 'string')
    t.type(payload.sub, 'string')

    const jwks = await call(url, '/.well-known/jwks.json')
    const jwk = jwks.body.keys.find((k: { kid: string }) => k.kid === header.kid)
    t.match(jwk, { kty: 'RSA', alg: 'RS256', use: 'sig' })
    t.notOk('d' in jwk, 'no private part')
    const [h, p, s] = login.body.accessToken.split('.')
    t.ok(verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url')))
  })

  t.test('admin accounts exist from startup with ADMIN_PASSWORD: their addresses cannot be claimed by registering', async (t) => {
    const admin = email()
    const { url } = await start(t, makeStore(), [admin])
    const claim = await call(url, '/api/auth/register', { body: { email: admin.toUpperCase(), password: 'attacker chosen' } })
    t.equal(claim.status, 409, 'the address is taken before anyone can register it')
    const attacker = await call(url, '/api/auth/login', { body: { email: admin, password: 'attacker chosen' } })
    t.equal(attacker.status, 401)
    const login = await call(url, '/api/auth/login', { body: { email: admin, password: ADMIN_PASSWORD } })
    t.equal(login.status, 200)
    t.match(decode(login.body.accessToken).payload, { roles: ['user', 'admin'], permissions: ['posts:moderate'] })
  })


  t.test('validate-token answers 200 with identity headers for a current token and 401 otherwise', async (t) => {
    const { url, clock } = await start(t, makeStore())
    const address = email()
    const registered = await call(url, '/api/auth/register', { body: { email: address, password: 'correct horse' } })
    const login = await call(url, '/api/auth/login', { body: { email: address, password: 'correct horse' } })
    const ok = await call(url, '/api/auth/validate-token', { token: login.body.accessToken })
    t.equal(ok.status, 200)
    t.equal(ok.headers.get('x-user-id'), registered.body.id)
    t.equal(ok.headers.get('x-user-roles'), 'user')

    const missing = await call(url, '/api/auth/validate-token')
    t.equal(missing.status, 401)
    t.match(missing.headers.get('www-authenticate'), /^Bearer /)
    t.equal(missing.headers.get('x-user-id'), null)
    const [h, p, s] = login.body.accessToken.split('.')
    const forged = Buffer.from(JSON.stringify({ ...decode(login.body.accessToken).payload, roles: ['admin'] })).toString('base64url')
    t.equal((await call(url, '/api/auth/validate-token', { token: `${h}.${forged}.${s}` })).status, 401, 'tampered claims')
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
    t.equal((await call(url, '/api/auth/validate-token', { token: `${none}.${p}.${s}` })).status, 401, 'alg none')

    clock.now += 901 * 1000
    t.equal((await call(url, '/api/auth/validate-token', { token: login.body.accessToken })).status, 401, 'expired')
  })

  t.test('refresh rotates; reusing a rotated token revokes the whole family', async (t) => {
    const { url } = await start(t, makeStore())
    const address = email()
    await call(url, '/api/auth/register', { body: { email: address, password: 'correct horse' } })
    const login = await call(url, '/api/auth/login', { body: { email: address, password: 'correct horse' } })
    const first = await call(url, '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } })
    t.equal(first.status, 200)
    t.not(first.body.refreshToken, login.body.refreshToken)
    t.equal(decode(first.body.accessToken).payload.sub, decode(login.body.accessToken).payload.sub)
    const second = await call(url, '/api/auth/refresh', { body: { refreshToken: first.body.refreshToken } })
    t.equal(second.status, 200, 'the successor works')

    const reuse = await call(url, '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } })
    t.equal(reuse.status, 401, 'a rotated token is refused')
    t.equal((await call(url, '/api/auth/refresh', { body: { refreshToken: second.body.refreshToken } })).status, 401, 'and its family is revoked')
    t.equal((await call(url, '/api/auth/validate-token', { token: second.body.accessToken })).status, 401, 'forward auth sees the revocation')

    const other = await call(url, '/api/auth/login', { body: { email: address, password: 'correct horse' } })
    t.equal((await call(url, '/api/auth/refresh', { body: { refreshToken: other.body.refreshToken } })).status, 200, 'other sessions live on')
    t.equal((await call(url, '/api/auth/refresh', { body: { refreshToken: 'nonsense' } })).status, 401)
  })

  t.test('an expired refresh token is refused', async (t) => {
    const { url, clock } = await start(t, makeStore())
    const address = email()
    await call(url, '/api/auth/register', { body: { email: address, password: 'correct horse' } })
    const login = await call(url, '/api/auth/login', { body: { email: address, password: 'correct horse' } })
    clock.now += 7 * 86400 * 1000 + 1
    t.equal((await call(url, '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } })).status, 401)
  })

  t.test('logout revokes the refresh-token family', async (t) => {
    const { url } = await start(t, makeStore())
    const address = email()
    await call(url, '/api/auth/register', { body: { email: address, password: 'correct horse' } })
    const login = await call(url, '/api/auth/login', { body: { email: address, password: 'correct horse' } })
    const rotated = await call(url, '/api/auth/refresh', { body: { refreshToken: login.body.refreshToken } })
    t.equal((await call(url, '/api/auth/logout', { body: { refreshToken: rotated.body.refreshToken } })).status, 204)
    t.equal((await call(url, '/api/auth/refresh', { body: { refreshToken: rotated.body.refreshToken } })).status, 401)
    t.equal((await call(url, '/api/auth/validate-token', { token: rotated.body.accessToken })).status, 401)
    t.equal((await call(url, '/api/auth/logout', { body: { refreshToken: rotated.body.refreshToken } })).status, 204, 'idempotent')
    t.equal((await call(url, '/api/auth/logout', { body: { refreshToken: 'unknown' } })).status, 204, 'silent about unknown tokens')
  })

  t.test('health names the store', async (t) => {
    const store = makeStore()
    const { url } = await start(t, store)
    t.same((await call(url, '/health')).body, { status: 'ok', store: store.kind })
  })
}
