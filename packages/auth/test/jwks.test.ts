import t from 'tap'
import { randomUUID } from 'node:crypto'
import { tollgateRuntime } from '@tollgate/common'
import { AUDIENCE, bearer, buildApp, claims, clock, ISSUER, jwksServer, makeKey, signWith } from './helpers/index.js'

const rsa = makeKey('rsa', 'rsa-1')
const ec = makeKey('ec', 'ec-1')
const ed = makeKey('ed25519', 'ed-1')

function jwtOptions (url: string, extra: Record<string, unknown> = {}): { jwt: Record<string, unknown> } {
  return { jwt: { jwksUrl: url, issuer: ISSUER, audience: AUDIENCE, ...extra } }
}

t.test('tokens signed with RS256, ES256 and EdDSA keys of a JWKS served over HTTP are accepted', async (t) => {
  const jwks = await jwksServer(t, [rsa, ec, ed])
  const { app } = await buildApp(t, jwtOptions(jwks.url))
  for (const key of [rsa, ec, ed]) {
    const res = await app.inject({ url: '/protected', headers: bearer(signWith(key, claims(`user-${key.kid}`))) })
    t.equal(res.statusCode, 200, key.alg)
    t.equal(res.json().identity.id, `user-${key.kid}`)
  }
  t.equal(jwks.hits(), 1, 'one fetch serves every known key')
})

t.test('a token whose alg does not match its key type is refused', async (t) => {
  const jwks = await jwksServer(t, [rsa])
  const { app } = await buildApp(t, jwtOptions(jwks.url))
  // PS256 is allowed for an RSA key but the JWK pins alg RS256.
  const res = await app.inject({ url: '/protected', headers: bearer(signWith(rsa, claims('x'), {}, 'PS256')) })
  t.equal(res.statusCode, 401)
})

t.test('a rotated key is accepted without a restart once the cooldown allows a refetch', async (t) => {
  const time = clock()
  const jwks = await jwksServer(t, [rsa])
  const { app } = await buildApp(t, { ...jwtOptions(jwks.url, { jwksCooldown: '30s' }), now: time.now })
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(rsa, claims('a', {}, time.now()))) })).statusCode, 200)
  t.equal(jwks.hits(), 1)

  const next = makeKey('rsa', 'rsa-2')
  jwks.setKeys([rsa, next])
  // Within the cooldown of the first fetch the new kid cannot trigger a refetch yet.
  time.advance(10_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(next, claims('b', {}, time.now()))) })).statusCode, 401)
  t.equal(jwks.hits(), 1)
  time.advance(20_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(next, claims('b', {}, time.now()))) })).statusCode, 200)
  t.equal(jwks.hits(), 2)
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(rsa, claims('a', {}, time.now()))) })).statusCode, 200, 'old key still valid')
})

t.test('a flood of unknown kids costs one fetch per cooldown (single-flight under concurrency)', async (t) => {
  const time = clock()
  const jwks = await jwksServer(t, [rsa])
  const { app } = await buildApp(t, { ...jwtOptions(jwks.url), now: time.now })
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(rsa, claims('a', {}, time.now()))) })).statusCode, 200)
  t.equal(jwks.hits(), 1)
  time.advance(31_000)

  const forged = makeKey('rsa', 'unused')
  const flood = Array.from({ length: 50 }, () => signWith(forged, claims('evil', {}, time.now()), {}, 'RS256', randomUUID()))
  const results = await Promise.all(flood.map(async (token) => await app.inject({ url: '/protected', headers: bearer(token) })))
  t.same(new Set(results.map((r) => r.statusCode)), new Set([401]))
  t.equal(jwks.hits(), 2, '50 concurrent unknown kids: exactly one refetch')

  const more = await Promise.all(flood.slice(0, 10).map(async (token) => await app.inject({ url: '/protected', headers: bearer(token) })))
  t.same(new Set(more.map((r) => r.statusCode)), new Set([401]))
  t.equal(jwks.hits(), 2, 'no refetch within the cooldown')
  time.advance(30_000)
  await app.inject({ url: '/protected', headers: bearer(flood[0]!) })
  t.equal(jwks.hits(), 3, 'one refetch after the cooldown')
})

t.test('a removed key stops verifying once the set is older than jwksMaxAge', async (t) => {
  const time = clock()
  const next = makeKey('ec', 'ec-2')
  const jwks = await jwksServer(t, [rsa, next])
  const { app } = await buildApp(t, { ...jwtOptions(jwks.url, { jwksMaxAge: '5m' }), now: time.now })
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(rsa, claims('a', {}, time.now()))) })).statusCode, 200)
  jwks.setKeys([next])
  time.advance(4 * 60_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(rsa, claims('a', {}, time.now()))) })).statusCode, 200, 'still cached')
  time.advance(2 * 60_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(rsa, claims('a', {}, time.now()))) })).statusCode, 401, 'revoked after max age')
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(next, claims('b', {}, time.now()))) })).statusCode, 200)
})

t.test('a JWKS that cannot be loaded fails closed with 503 and Retry-After, then recovers', async (t) => {
  const time = clock()
  const jwks = await jwksServer(t, [rsa])
  jwks.setStatus(500)
  const { app, failures } = await buildApp(t, { ...jwtOptions(jwks.url), now: time.now, retryAfter: '7s' })
  const token = signWith(rsa, claims('a', {}, time.now()))
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '7')
  t.equal(res.json().code, 'TOLLGATE_AUTH_UNAVAILABLE')
  t.same(failures, [{ route: '/protected', reason: 'unavailable' }])
  const checks = await tollgateRuntime(app).checkReadiness()
  t.match(checks, [{ name: 'auth:jwks', ok: false, message: /JWKS not loaded: JWKS answered 500/ }])

  jwks.setStatus(200)
  time.advance(4_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 503, 'no refetch within 5 s of the last try')
  time.advance(1_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200, 'with no set loaded, a try every 5 s, not every jwksCooldown')
  t.match(await tollgateRuntime(app).checkReadiness(), [{ name: 'auth:jwks', ok: true }])
})

t.test('while no key set is loaded, Retry-After is never earlier than the next fetch', async (t) => {
  const time = clock()
  const jwks = await jwksServer(t, [rsa])
  jwks.setStatus(500)
  const { app } = await buildApp(t, { ...jwtOptions(jwks.url), now: time.now, retryAfter: '1s' })
  const token = signWith(rsa, claims('a', {}, time.now()))
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5', 'the store tries again in 5 s: a client retrying after 1 s would only get another 503')
})

t.test('keys of a set that failed to refresh keep working', async (t) => {
  const time = clock()
  const jwks = await jwksServer(t, [rsa])
  const { app } = await buildApp(t, { ...jwtOptions(jwks.url, { jwksMaxAge: '1m' }), now: time.now })
  const token = (): string => signWith(rsa, claims('a', {}, time.now()))
  t.equal((await app.inject({ url: '/protected', headers: bearer(token()) })).statusCode, 200)
  await jwks.close()
  time.advance(2 * 60_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token()) })).statusCode, 200)
})
