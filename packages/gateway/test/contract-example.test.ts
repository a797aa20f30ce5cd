// The contract's example manifest, as written, in front of real upstreams, a real
// JWKS server, a real forward-auth service and the real Redis. Only the addresses
// are moved to free ports (and the Redis key prefix made unique to this run).
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { createGateway, parseManifestText } from '../src/index.js'
import { echoUpstream } from './helpers/upstream.js'
import { jwksServer, sign, signingKey } from './helpers/keys.js'

const EXAMPLE = readFileSync(fileURLToPath(new URL('../../../docs/manifest.example.yaml', import.meta.url)), 'utf8')

const rsa = signingKey('RS256')
const ec = signingKey('ES256')
const stranger = signingKey('RS256')

const jwks = await jwksServer([rsa, ec])
const auth = await echoUpstream({ name: 'auth' })
const posts = await echoUpstream({ name: 'posts-a' })
const posts2 = await echoUpstream({ name: 'posts-b' })
const chat = await echoUpstream({ name: 'chat' })
// Forward auth: allows the token "forward-ok" as user fwd-1, denies anything else.
const forward = createServer((req, res) => {
  if (req.headers.authorization === 'Bearer forward-ok') res.writeHead(200, { 'x-user-id': 'fwd-1', 'x-user-roles': 'user' }).end()
  else res.writeHead(401).end()
})
await new Promise<void>((resolve) => forward.listen(0, '127.0.0.1', resolve))
const forwardPort = (forward.address() as AddressInfo).port

const keyPrefix = `tollgate-test:${randomUUID()}:`
const text = EXAMPLE
  .replace('http://127.0.0.1:3001/api/auth/validate-token', `http://127.0.0.1:${forwardPort}/api/auth/validate-token`)
  .replace('targets: [http://127.0.0.1:3001]', `targets: [${auth.url}]`)
  .replace('targets: [http://127.0.0.1:3002, http://127.0.0.1:3012]', `targets: [${posts.url}, ${posts2.url}]`)
  .replace('targets: [http://127.0.0.1:4000]', `targets: [${chat.url}]`)
  .replace('keyPrefix: "tollgate:"', `keyPrefix: "${keyPrefix}"`)
  .replace('port: 8080', 'port: 0')
t.not(text, EXAMPLE)
const manifest = parseManifestText(text, 'manifest.example.yaml', { env: { JWKS_URL: jwks.url } })
const app = await createGateway(manifest, { logLevel: 'silent' })
await app.listen({ host: '127.0.0.1', port: 0 })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

t.teardown(async () => {
  await app.close()
  await Promise.all([jwks.close(), auth.close(), posts.close(), posts2.close(), chat.close()])
  forward.closeAllConnections()
  forward.close()
})

async function get (path: string, headers: Record<string, string> = {}, method = 'GET') {
  const response = await request(`${base}${path}`, { method: method as 'GET', headers })
  const text = await response.body.text()
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, unknown> }
}

const lastSeen = () => [...posts.seen, ...posts2.seen].sort((a, b) => Number(a.headers['x-test-order'] ?? 0) - Number(b.headers['x-test-order'] ?? 0))

t.test('no credentials on a protected route: 401 with the bearer challenge', async (t) => {
  const response = await get('/api/posts')
  t.equal(response.status, 401)
  t.equal(response.headers['www-authenticate'], 'Bearer realm="tollgate"')
  t.match(response.json(), { statusCode: 401, error: 'Unauthorized', message: String })
})

t.test('every kind of bad token: 401 with error="invalid_token"', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const bad: Record<string, string> = {
    garbage: 'not.a.token',
    expired: sign(rsa, { exp: now - 60 }),
    'not yet valid': sign(rsa, { nbf: now + 3600 }),
    'wrong issuer': sign(rsa, { iss: 'someone-else' }),
    'wrong audience': sign(rsa, { aud: 'another-api' }),
    'unknown key': sign(stranger),
    'no exp': sign(rsa, { exp: undefined })
  }
  for (const [name, token] of Object.entries(bad)) {
    const response = await get('/api/posts', { authorization: `Bearer ${token}` })
    t.equal(response.status, 401, name)
    t.equal(response.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"', name)
    t.notMatch(response.text, token, `${name}: the token is not echoed`)
  }
})

t.test('a valid JWT reaches the upstream with identity headers and without the credential', async (t) => {
  for (const key of [rsa, ec]) {
    const token = sign(key, { sub: `user-${key.alg}`, roles: ['user', 'reader'] })
    const response = await get('/api/posts/1?x=1', { authorization: `Bearer ${token}`, 'x-user-id': 'spoofed', x_user_id: 'spoofed', 'x.user.roles': 'admin' })
    t.equal(response.status, 200, key.alg)
    const seen = response.json() as { url: string, headers: Record<string, string> }
    t.equal(seen.url, '/api/posts/1?x=1')
    t.equal(seen.headers['x-user-id'], `user-${key.alg}`)
    t.equal(seen.headers['x-user-roles'], 'user,reader')
    t.equal(seen.headers.authorization, undefined, 'stripCredentials removes Authorization')
    t.notOk(Object.keys(seen.headers).some((name) => ['x_user_id', 'x.user.roles'].includes(name)), 'aliases removed')
  }
})

t.test('a hashed API key authenticates as its id, and is stripped', async (t) => {
  const response = await get('/api/posts', { 'x-api-key': 'example-partner-key' })
  t.equal(response.status, 200)
  const seen = response.json() as { headers: Record<string, string> }
  t.equal(seen.headers['x-user-id'], 'reporting-partner')
  t.equal(seen.headers['x-user-roles'], 'partner')
  t.equal(seen.headers['x-api-key'], undefined)
  const unknown = await get('/api/posts', { 'x-api-key': 'guessed-key' })
  t.equal(unknown.status, 401)
})

t.test('authenticated but missing a role or permission: 403', async (t) => {
  const user = sign(rsa, { roles: ['user'] })
  t.equal((await get('/api/admin/queue', { authorization: `Bearer ${user}` })).status, 403)
  const adminWithoutPermission = sign(rsa, { roles: ['admin'], permissions: [] })
  t.equal((await get('/api/admin/queue', { authorization: `Bearer ${adminWithoutPermission}` })).status, 403)
  const moderator = sign(rsa, { roles: ['admin'], permissions: ['posts:moderate'] })
  const allowed = await get('/api/admin/queue', { authorization: `Bearer ${moderator}` })
  t.equal(allowed.status, 200)
  t.equal((allowed.json() as { url: string }).url, '/admin/queue', 'rewritePrefix /admin')
  t.equal((await get('/api/admin/queue', { 'x-api-key': 'example-partner-key' })).status, 401, 'apiKey is not a method of /api/admin')
})

t.test('two credentials for different principals: 400 or 401', async (t) => {
  const token = sign(rsa, { sub: 'user-1' })
  const response = await get('/api/posts', { authorization: `Bearer ${token}`, 'x-api-key': 'example-partner-key' })
  t.ok([400, 401].includes(response.status), String(response.status))
})

t.test('forward auth on /api/meetings: allow, deny', async (t) => {
  const allowed = await get('/api/meetings', { authorization: 'Bearer forward-ok' })
  t.equal(allowed.status, 200)
  t.equal((allowed.json() as { headers: Record<string, string> }).headers['x-user-id'], 'fwd-1')
  const denied = await get('/api/meetings', { authorization: 'Bearer nope' })
  t.equal(denied.status, 401)
})

t.test('public routes: spoofed identity headers never reach the upstream', async (t) => {
  const response = await get('/api/auth/login', { 'x-user-id': 'admin', 'X-User-Roles': 'admin', x_user_id: 'admin', connection: 'x-user-id' })
  t.equal(response.status, 200)
  const seen = response.json() as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/api/auth/login')
  for (const name of Object.keys(seen.headers)) t.notMatch(name, /^x[-_.]user[-_.]/, `${name} removed`)
})

t.test('rate limits: headers on passing responses, 429 with Retry-After past max', async (t) => {
  const first = await get('/api/auth/ping', { 'x-forwarded-for': '9.9.9.9' })
  t.equal(first.status, 200)
  t.equal(first.headers['ratelimit-limit'], '10')
  t.equal(first.headers['ratelimit-remaining'], '8', 'the public-route test above spent one')
  t.match(first.headers['ratelimit-reset'], /^\d+$/)
  let last = first
  for (let i = 0; i < 9; i++) last = await get(`/api/auth/ping-${i}`)
  t.equal(last.status, 429)
  t.match(last.headers['retry-after'], /^\d+$/)
  t.equal(last.headers['ratelimit-remaining'], '0')
  t.match(last.json(), { statusCode: 429, error: 'Too Many Requests' })
  t.equal((await get('/healthz')).status, 200, 'the gateway\'s own endpoints are never limited')
})

t.test('TRACE and unlisted methods get 405 with Allow', async (t) => {
  const token = sign(rsa)
  const head = await get('/api/posts', { authorization: `Bearer ${token}` }, 'OPTIONS')
  t.equal(head.status, 405)
  t.match(head.headers.allow, /GET/)
  t.equal((await get('/api/posts', {}, 'TRACE')).status, 405)
})

t.test('readiness reflects upstreams, Redis and the JWKS', async (t) => {
  const ready = await get('/readyz')
  t.equal(ready.status, 200, ready.text)
  const names = ((ready.json().checks ?? []) as Array<{ name: string }>).map((check) => check.name).sort()
  t.same(names.filter((name) => name.startsWith('upstream:')), ['upstream:auth', 'upstream:chat', 'upstream:posts'])
  t.ok(names.includes('redis'))
})

t.test('auth failures and rate limiting are counted by reason and route', async (t) => {
  const metrics = (await get('/metrics')).text
  t.match(metrics, /tollgate_auth_failures_total\{route="\/api\/posts",reason="missing"\} [1-9]/)
  t.match(metrics, /tollgate_auth_failures_total\{route="\/api\/posts",reason="invalid"\} [1-9]/)
  t.match(metrics, /tollgate_auth_failures_total\{route="\/api\/admin",reason="forbidden"\} [1-9]/)
  t.match(metrics, /tollgate_rate_limited_total\{route="\/api\/auth"\} [1-9]/)
  t.match(metrics, /tollgate_upstream_target_healthy\{upstream="posts",target="[^"]+"\} 1/)
  t.ok(lastSeen().length > 0)
})
