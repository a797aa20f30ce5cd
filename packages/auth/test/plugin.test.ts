import t from 'tap'
import { createHmac } from 'node:crypto'
import Fastify from 'fastify'
import tollgateAuth, { errors, type AuthOptions } from '../src/index.js'
import { AUDIENCE, bearer, buildApp, claims, clock, ISSUER, PARTNER_KEY, SECRET, sha256, signHmac } from './helpers/index.js'

const base: AuthOptions = {
  jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] },
  apiKeys: { header: 'x-api-key', keys: [{ id: 'reporting-partner', sha256: sha256(PARTNER_KEY), roles: ['partner'] }] },
  identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' }
}

t.test('a valid HS256 token authenticates, sets the identity and the identity headers', async (t) => {
  const { app } = await buildApp(t, base)
  const token = signHmac(SECRET, claims('alice', { roles: ['user', 'editor'] }))
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.headers['x-user-id'], 'alice')
  t.equal(body.headers['x-user-roles'], 'user,editor')
  t.equal(body.identity.id, 'alice')
  t.equal(body.identity.method, 'jwt')
  t.same(body.identity.roles, ['user', 'editor'])
  t.equal(body.headers.authorization, `Bearer ${token}`, 'credentials kept without stripCredentials')
})

t.test('no credentials on a protected route: 401 with WWW-Authenticate realm and a missing event', async (t) => {
  const { app, failures } = await buildApp(t, base)
  const res = await app.inject({ url: '/protected' })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate"')
  t.equal(res.json().code, 'TOLLGATE_AUTH_MISSING_CREDENTIALS')
  t.same(failures, [{ route: '/protected', reason: 'missing' }])
})

t.test('a bad token: 401 invalid_token and an invalid event', async (t) => {
  const { app, failures } = await buildApp(t, base)
  const token = signHmac('another-secret-that-is-also-long-enough!!', claims('alice'))
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
  t.equal(res.json().code, 'TOLLGATE_AUTH_INVALID_TOKEN')
  t.same(failures, [{ route: '/protected', reason: 'invalid' }])
  t.notOk(res.body.includes(token), 'the token is never echoed back')
})

t.test('an expired token: 401 invalid_token, TOKEN_EXPIRED and an expired event', async (t) => {
  const { app, failures } = await buildApp(t, base)
  const past = Date.now() - 7_200_000
  const token = signHmac(SECRET, claims('alice', {}, past))
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"')
  t.equal(res.json().code, 'TOLLGATE_AUTH_TOKEN_EXPIRED')
  t.same(failures, [{ route: '/protected', reason: 'expired' }])
})

t.test('a token accepted once is refused once the clock passes its exp (no stale acceptance)', async (t) => {
  const time = clock()
  const { app } = await buildApp(t, { ...base, now: time.now })
  const token = signHmac(SECRET, claims('alice', { exp: Math.floor(time.now() / 1000) + 60 }))
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  time.advance(61_000)
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOLLGATE_AUTH_TOKEN_EXPIRED')
})

t.test('clockTolerance lets a just-expired token through, and no further', async (t) => {
  const time = clock()
  const { app } = await buildApp(t, { ...base, jwt: { ...base.jwt, clockTolerance: '5s' }, now: time.now })
  const exp = Math.floor(time.now() / 1000) + 10
  const token = signHmac(SECRET, claims('alice', { exp }))
  time.set(exp * 1000 + 4_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  time.set(exp * 1000 + 6_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 401)
})

t.test('iat must be a number, and not later than now plus clockTolerance', async (t) => {
  const time = clock()
  const { app } = await buildApp(t, { ...base, jwt: { ...base.jwt, clockTolerance: '5s' }, now: time.now })
  const nowSeconds = Math.floor(time.now() / 1000)
  // Signed by hand: fast-jwt's signer drops a given iat when told not to add its own.
  const sign = (payload: Record<string, unknown>): string => {
    const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
    const input = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}`
    return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`
  }
  const status = async (iat: unknown): Promise<number> =>
    (await app.inject({ url: '/protected', headers: bearer(sign(claims('alice', { iat }, time.now()))) })).statusCode
  t.equal(await status('yesterday'), 401, 'not a NumericDate')
  t.equal(await status(nowSeconds + 3600), 401, 'issued an hour from now')
  t.equal(await status(nowSeconds + 4), 200, 'within the tolerance')
  t.equal(await status(nowSeconds - 60), 200, 'issued a minute ago')
})

t.test('roles: any of; permissions: all of; a missing one is 403 without WWW-Authenticate', async (t) => {
  const { app, failures } = await buildApp(t, base)
  const admin = signHmac(SECRET, claims('root', { roles: ['admin'], permissions: ['posts:moderate', 'posts:delete'] }))
  t.equal((await app.inject({ url: '/admin', headers: bearer(admin) })).statusCode, 200)

  const noPermission = signHmac(SECRET, claims('bob', { roles: ['admin'], permissions: ['posts:read'] }))
  const res = await app.inject({ url: '/admin', headers: bearer(noPermission) })
  t.equal(res.statusCode, 403)
  t.equal(res.headers['www-authenticate'], undefined)
  t.equal(res.json().code, 'TOLLGATE_AUTH_FORBIDDEN')

  const noRole = signHmac(SECRET, claims('carol', { roles: ['user'], permissions: ['posts:moderate'] }))
  t.equal((await app.inject({ url: '/admin', headers: bearer(noRole) })).statusCode, 403)
  t.same(failures.map((f) => f.reason), ['forbidden', 'forbidden'])
})

t.test('a single-string roles claim counts as one role', async (t) => {
  const { app } = await buildApp(t, base)
  const token = signHmac(SECRET, claims('root', { roles: 'admin', permissions: 'posts:moderate' }))
  const res = await app.inject({ url: '/admin', headers: bearer(token) })
  t.equal(res.statusCode, 200)
  t.equal(res.json().headers['x-user-roles'], 'admin')
})

t.test('rolesClaim and permissionsClaim can point at nested or namespaced claims', async (t) => {
  const { app } = await buildApp(t, { ...base, jwt: { ...base.jwt, rolesClaim: 'realm_access.roles', permissionsClaim: 'https://example.com/perms' } })
  const token = signHmac(SECRET, claims('root', { roles: undefined, realm_access: { roles: ['admin'] }, 'https://example.com/perms': ['posts:moderate'] }))
  t.equal((await app.inject({ url: '/admin', headers: bearer(token) })).statusCode, 200)
})

t.test('a valid API key authenticates as its id with its roles', async (t) => {
  const { app } = await buildApp(t, base)
  const res = await app.inject({ url: '/protected', headers: { 'x-api-key': PARTNER_KEY } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().identity.id, 'reporting-partner')
  t.equal(res.json().identity.method, 'apiKey')
  t.equal(res.json().headers['x-user-id'], 'reporting-partner')
  t.equal(res.json().headers['x-user-roles'], 'partner')
})

t.test('an unknown API key is 401 with an invalid event', async (t) => {
  const { app, failures } = await buildApp(t, base)
  const res = await app.inject({ url: '/protected', headers: { 'x-api-key': 'guess' } })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOLLGATE_AUTH_INVALID_API_KEY')
  t.same(failures, [{ route: '/protected', reason: 'invalid' }])
})

t.test('route methods restrict which credentials count', async (t) => {
  const { app } = await buildApp(t, base)
  const token = signHmac(SECRET, claims('alice'))
  t.equal((await app.inject({ url: '/jwt-only', headers: { 'x-api-key': PARTNER_KEY } })).statusCode, 401)
  t.equal((await app.inject({ url: '/key-only', headers: bearer(token) })).statusCode, 401)
  t.equal((await app.inject({ url: '/key-only', headers: { 'x-api-key': PARTNER_KEY } })).statusCode, 200)
})

t.test('stripCredentials removes Authorization and the API key header before the upstream', async (t) => {
  const { app } = await buildApp(t, base)
  const token = signHmac(SECRET, claims('alice'))
  const res = await app.inject({ url: '/strip', headers: { ...bearer(token), 'X-Api-Key': PARTNER_KEY } })
  t.equal(res.statusCode, 401, 'two credentials of different principals are refused')
  const ok = await app.inject({ url: '/strip', headers: bearer(token) })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().headers.authorization, undefined)
  t.equal(ok.json().headers['x-user-id'], 'alice')
  const key = await app.inject({ url: '/strip', headers: { 'x-api-key': PARTNER_KEY } })
  t.equal(key.statusCode, 200)
  t.equal(key.json().headers['x-api-key'], undefined)
})

t.test('a token and an API key of the same principal are accepted together', async (t) => {
  const { app } = await buildApp(t, base)
  const token = signHmac(SECRET, claims('reporting-partner'))
  const res = await app.inject({ url: '/protected', headers: { ...bearer(token), 'x-api-key': PARTNER_KEY } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().identity.id, 'reporting-partner')
})

t.test('a cached token is checked with the other credentials exactly like a first verification', async (t) => {
  // The first request verifies the token; the second takes the synchronous cache-hit path.
  const { app } = await buildApp(t, base)
  const partner = signHmac(SECRET, claims('reporting-partner'))
  const alice = signHmac(SECRET, claims('alice'))
  for (const attempt of ['verified', 'cached']) {
    const same = await app.inject({ url: '/protected', headers: { ...bearer(partner), 'x-api-key': PARTNER_KEY } })
    t.equal(same.statusCode, 200, `${attempt}: same principal`)
    t.equal(same.json().identity.id, 'reporting-partner')
    const other = await app.inject({ url: '/protected', headers: { ...bearer(alice), 'x-api-key': PARTNER_KEY } })
    t.equal(other.statusCode, 401, `${attempt}: different principals`)
    t.equal(other.json().code, 'TOLLGATE_AUTH_CONFLICTING_CREDENTIALS')
    const wrongKey = await app.inject({ url: '/protected', headers: { ...bearer(alice), 'x-api-key': 'guess' } })
    t.equal(wrongKey.statusCode, 401, `${attempt}: a valid token does not excuse a wrong key`)
    t.equal(wrongKey.json().code, 'TOLLGATE_AUTH_INVALID_API_KEY')
  }
})

t.test('once a token is cached, every spelling of its header is judged as on first sight', async (t) => {
  // A plain `Bearer <token>` is looked up in the cache before its syntax is checked; any
  // other spelling, or the token with anything around it, must still meet the full checks.
  const { app } = await buildApp(t, base)
  const token = signHmac(SECRET, claims('alice'))
  const status = async (authorization: string) => (await app.inject({ url: '/protected', headers: { authorization } })).statusCode
  t.equal(await status(`Bearer ${token}`), 200, 'verified, then cached')
  t.equal(await status(`Bearer ${token}`), 200, 'a cache hit')
  t.equal(await status(`bearer ${token}`), 200, 'the scheme is case-insensitive')
  t.equal(await status(`Bearer   ${token}  `), 200, 'spaces around the token are allowed')
  for (const malformed of [`Bearer ${token} x`, `Bearer ${token}\t`, `Bearer ${token},${token}`, `Bearer ${token}!`]) {
    t.equal(await status(malformed), 401, JSON.stringify(malformed.slice(-4)))
  }
  t.equal(await status(`Bearer ${token.slice(0, -2)}`), 401, 'a cut signature')
})

t.test('a public route needs nothing and gets no identity', async (t) => {
  const { app } = await buildApp(t, base)
  const res = await app.inject({ url: '/public' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().identity, null)
})

t.test('defaultRoute public leaves routes without config.auth open; explicit auth still applies', async (t) => {
  const { app } = await buildApp(t, { ...base, defaultRoute: 'public' })
  t.equal((await app.inject({ url: '/protected' })).statusCode, 200)
  t.equal((await app.inject({ url: '/admin' })).statusCode, 401)
})

t.test('a route registered before the plugin is still authenticated by default (safety net)', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/early', async (request) => ({ id: request.tollgateIdentity?.id ?? null, user: request.headers['x-user-id'] ?? null }))
  await app.register(tollgateAuth, base)
  await app.ready()
  t.equal((await app.inject({ url: '/early' })).statusCode, 401)
  const res = await app.inject({ url: '/early', headers: bearer(signHmac(SECRET, claims('alice'))) })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { id: 'alice', user: 'alice' })
})

t.test('a bad route config fails at startup naming the route', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tollgateAuth, base)
  t.throws(() => app.get('/x', { config: { auth: { methods: ['forward'] } } }, async () => 'x'), /route GET \/x: config\.auth\.methods: forward is not configured/)
  t.throws(() => app.get('/y', { config: { auth: { role: ['admin'] } as never } }, async () => 'y'), /config\.auth\.role: unknown key/)
  t.throws(() => app.get('/z', { config: { stripCredentials: 'yes' as never } }, async () => 'z'), /stripCredentials must be a boolean/)
})

t.test('HEAD of a protected GET route is protected too', async (t) => {
  const { app } = await buildApp(t, base)
  t.equal((await app.inject({ method: 'HEAD', url: '/protected' })).statusCode, 401)
})

t.test('errors are exported for instanceof checks', async (t) => {
  t.ok(new errors.ForbiddenError() instanceof errors.ForbiddenError)
  t.equal(new errors.UnavailableError().statusCode, 503)
  t.equal(new errors.MissingCredentialsError().code, 'TOLLGATE_AUTH_MISSING_CREDENTIALS')
})

t.test('the identity decorator starts as null on unmatched routes too', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tollgateAuth, base)
  app.setNotFoundHandler((request, reply) => { void reply.code(404).send({ identity: request.tollgateIdentity }) })
  const res = await app.inject({ url: '/nowhere', headers: bearer(signHmac(SECRET, claims('alice'))) })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { identity: null })
})
