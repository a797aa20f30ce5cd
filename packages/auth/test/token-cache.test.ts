import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, clock, ISSUER, jwksServer, makeKey, SECRET, signHmac, signWith } from './helpers/index.js'
import { TokenCache, type CachedToken } from '../src/token-cache.js'

const rsa = makeKey('rsa', 'rsa-1')
const secretOptions = { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } }

t.test('a cached token is never served past its exp: the clock is checked on every hit', async (t) => {
  const time = clock()
  const { app } = await buildApp(t, { ...secretOptions, now: time.now })
  const token = signHmac(SECRET, claims('a', {}, time.now()))
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200, 'hit')
  time.advance(3600_000 + 1000)
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOLLGATE_AUTH_TOKEN_EXPIRED')
})

t.test('a cached token is not served before its nbf when the clock goes back', async (t) => {
  const time = clock()
  const { app } = await buildApp(t, { ...secretOptions, now: time.now })
  const token = signHmac(SECRET, claims('a', { nbf: Math.floor(time.now() / 1000) }, time.now()))
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  time.advance(-60_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 401)
})

t.test('a change of the JWKS drops every cached token (a removed key stops verifying at once)', async (t) => {
  const time = clock()
  const next = makeKey('rsa', 'rsa-2')
  const jwks = await jwksServer(t, [rsa])
  const { app } = await buildApp(t, { jwt: { jwksUrl: jwks.url, issuer: ISSUER, audience: AUDIENCE }, now: time.now })
  const old = signWith(rsa, claims('a', {}, time.now()))
  t.equal((await app.inject({ url: '/protected', headers: bearer(old) })).statusCode, 200)
  t.equal((await app.inject({ url: '/protected', headers: bearer(old) })).statusCode, 200, 'hit')
  // Rotation: the old key is removed; a token of the new key triggers the refetch.
  jwks.setKeys([next])
  time.advance(31_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(signWith(next, claims('b', {}, time.now()))) })).statusCode, 200)
  t.equal(jwks.hits(), 2)
  t.equal((await app.inject({ url: '/protected', headers: bearer(old) })).statusCode, 401, 'the cached token of the removed key is refused')
})

t.test('identity headers and roles are applied the same on a cache hit', async (t) => {
  const { app } = await buildApp(t, { ...secretOptions, identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' } })
  const token = signHmac(SECRET, claims('a', { roles: ['user', 'admin'], permissions: ['posts:moderate'] }))
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ url: '/admin', headers: { ...bearer(token), 'x-user-id': 'spoofed' } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().headers['x-user-id'], 'a')
    t.equal(res.json().headers['x-user-roles'], 'user,admin')
  }
  const plain = signHmac(SECRET, claims('b'))
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ url: '/admin', headers: bearer(plain) })).statusCode, 403)
})

t.test('tokenCacheSize: 0 turns the cache off; a bad value fails registration', async (t) => {
  const { app } = await buildApp(t, { jwt: { ...secretOptions.jwt, tokenCacheSize: 0 } })
  const token = signHmac(SECRET, claims('a'))
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  await t.rejects(async () => await buildApp(t, { jwt: { ...secretOptions.jwt, tokenCacheSize: -1 } }), /tokenCacheSize/)
})

t.test('TokenCache: bounded, keyed by a digest of the whole token, exp checked on get', async (t) => {
  const time = clock(1_000_000)
  const cache = new TokenCache(2, 0, time.now, undefined)
  const entry = (id: string): CachedToken => ({ identity: { id, method: 'jwt', roles: [], permissions: [] }, expMs: 2_000_000, nbfMs: Number.NEGATIVE_INFINITY, headers: undefined })
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl'
  const digest = cache.digest(token)
  t.notOk(digest.includes(token) || token.includes(digest), 'the key is not the token')
  t.not(cache.digest(`${token}x`), digest, 'the whole token counts')
  cache.set(digest, entry('a'), 0)
  cache.set(cache.digest('b'), entry('b'), 0)
  cache.set(cache.digest('c'), entry('c'), 0)
  t.equal(cache.size, 2)
  t.equal(cache.get(digest), undefined, 'least recently used dropped')
  t.equal(cache.get(cache.digest('c'))?.identity.id, 'c')
  time.set(2_000_001)
  t.equal(cache.get(cache.digest('c')), undefined, 'past exp')
  t.equal(cache.size, 1)
})
