import { tollgateRuntime } from '@tollgate/common'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import t from 'tap'
import tollgateRateLimit, { errors } from '../src/index.js'
import { buildApp, statuses, TestClock } from './helpers/app.js'

t.test('a limited route answers 429 after max requests, with the contract headers on every response', async (t) => {
  const clock = new TestClock()
  const app = await buildApp(t, { now: clock.now }, (app) => {
    app.get('/login', { config: { rateLimit: { max: 3, window: '1m' } } }, async () => ({ ok: true }))
  })
  for (let i = 1; i <= 3; i++) {
    const response = await app.inject('/login')
    t.equal(response.statusCode, 200)
    t.equal(response.headers['ratelimit-limit'], '3')
    t.equal(response.headers['ratelimit-remaining'], String(3 - i))
    t.equal(response.headers['ratelimit-reset'], '60')
    t.notOk('retry-after' in response.headers, 'no Retry-After on a passing response')
  }
  clock.advance(20_500)
  const refused = await app.inject('/login')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['ratelimit-limit'], '3')
  t.equal(refused.headers['ratelimit-remaining'], '0')
  t.equal(refused.headers['ratelimit-reset'], '40', 'delta-seconds, rounded up: 39.5 s left')
  t.equal(refused.headers['retry-after'], '40')
  const body = refused.json()
  t.equal(body.statusCode, 429)
  t.equal(body.code, 'TOLLGATE_RATE_LIMIT_EXCEEDED')
  t.match(body.message, /retry in 40 seconds/)

  clock.advance(39_500)
  t.equal((await app.inject('/login')).statusCode, 200, 'the next window admits again')
})

t.test('the thrown error is the exported @fastify/error, and rateLimited is emitted with the route label', async (t) => {
  const app = Fastify()
  const seen: unknown[] = []
  const events: string[] = []
  tollgateRuntime(app).events.on('rateLimited', (event) => { events.push(event.route) })
  app.setErrorHandler((error, _request, reply) => {
    seen.push(error)
    reply.code((error as { statusCode?: number }).statusCode ?? 500).send({ message: 'rendered by the app' })
  })
  await app.register(tollgateRateLimit, { default: { max: 1, window: '1h' } })
  app.get('/items/:id', async () => 'ok')
  app.get('/proxied', { config: { tollgate: { route: '/api/posts' } } }, async () => 'ok')
  t.teardown(() => app.close())
  await app.ready()
  t.same(await statuses(app, '/items/1', 2), [200, 429])
  t.same(await statuses(app, '/items/2', 1), [429], 'buckets are per route pattern, not per raw path')
  t.same(await statuses(app, '/proxied', 2), [200, 429])
  t.equal(seen.length, 3)
  t.ok(seen[0] instanceof errors.RateLimitExceededError)
  t.same(events, ['/items/:id', '/items/:id', '/api/posts'])
})

t.test('without default and without config.rateLimit nothing is limited; false is never limited', async (t) => {
  const app = await buildApp(t, {}, (app) => {
    app.get('/free', async () => 'ok')
    app.get('/limited', { config: { rateLimit: { max: 1, window: '1m' } } }, async () => 'ok')
  })
  t.same(await statuses(app, '/free', 5), [200, 200, 200, 200, 200])
  t.notOk('ratelimit-limit' in (await app.inject('/free')).headers)
  t.same(await statuses(app, '/limited', 2), [200, 429])

  const withDefault = await buildApp(t, { default: { max: 1, window: '1m' } }, (app) => {
    app.get('/healthz', { config: { rateLimit: false } }, async () => 'ok')
    app.get('/other', async () => 'ok')
  })
  t.same(await statuses(withDefault, '/healthz', 5), [200, 200, 200, 200, 200])
  t.notOk('ratelimit-limit' in (await withDefault.inject('/healthz')).headers)
  t.same(await statuses(withDefault, '/other', 2), [200, 429])
})

t.test('every path spelling that reaches a proxied route shares the route label bucket', async (t) => {
  const app = await buildApp(t, {}, (app) => {
    const config = { tollgate: { route: '/api/auth' }, rateLimit: { max: 3, window: '1m' } }
    app.all('/api/auth', { config }, async () => 'ok')
    app.all('/api/auth/*', { config }, async () => 'ok')
  }, { routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true } })
  const results = []
  for (const url of ['/api/auth', '/api/auth/', '//api/auth', '/api/auth/login', '/api/auth?x=1']) {
    results.push((await app.inject(url)).statusCode)
  }
  t.same(results, [200, 200, 200, 429, 429])
  t.equal((await app.inject('/API/auth')).statusCode, 404, 'a spelling that does not match never reaches the upstream')
  t.equal((await app.inject('/api/%61uth')).statusCode, 429, 'a percent-encoded spelling that matches counts in the same bucket')
})

t.test('HEAD shares the bucket of its GET route', async (t) => {
  const app = await buildApp(t, {}, (app) => {
    app.get('/x', { config: { rateLimit: { max: 2, window: '1m' } } }, async () => 'ok')
  })
  t.equal((await app.inject({ method: 'HEAD', url: '/x' })).statusCode, 200)
  t.equal((await app.inject('/x')).statusCode, 200)
  t.equal((await app.inject({ method: 'HEAD', url: '/x' })).statusCode, 429)
})

t.test('max: 0 refuses every request', async (t) => {
  const app = await buildApp(t, {}, (app) => {
    app.get('/closed', { config: { rateLimit: { max: 0, window: '10s' } } }, async () => 'ok')
  })
  const response = await app.inject('/closed')
  t.equal(response.statusCode, 429)
  t.equal(response.headers['retry-after'], '10')
  t.equal(response.headers['ratelimit-limit'], '0')
})

t.test('spoofed forwarding headers never change the key without trustProxy; with it they do', async (t) => {
  const spoofs = [
    { 'x-forwarded-for': '203.0.113.1' },
    { 'x-forwarded-for': '203.0.113.2, 198.51.100.7' },
    { 'x-real-ip': '203.0.113.3' },
    { forwarded: 'for=203.0.113.4' },
    { 'cf-connecting-ip': '203.0.113.5' },
    { 'true-client-ip': '203.0.113.6' }
  ]
  const routes = (app: FastifyInstance): void => {
    app.get('/x', { config: { rateLimit: { max: 1, window: '1m', by: 'ip' } } }, async () => 'ok')
  }
  const untrusted = await buildApp(t, {}, routes)
  const codes = []
  for (const headers of spoofs) codes.push((await untrusted.inject({ url: '/x', headers })).statusCode)
  t.same(codes, [200, 429, 429, 429, 429, 429], 'one bucket: the socket peer')

  // The same requests behind a trusted proxy: X-Forwarded-For now names the client.
  const trusted = await buildApp(t, {}, routes, { trustProxy: true })
  t.equal((await trusted.inject({ url: '/x', headers: { 'x-forwarded-for': '203.0.113.1' } })).statusCode, 200)
  t.equal((await trusted.inject({ url: '/x', headers: { 'x-forwarded-for': '203.0.113.2' } })).statusCode, 200)
  t.equal((await trusted.inject({ url: '/x', headers: { 'x-forwarded-for': '203.0.113.1' } })).statusCode, 429)
})

t.test('by: user keys by the verified identity and falls back to the IP when anonymous or without auth', async (t) => {
  // What @tollgate/auth does, reduced to the part the limiter reads: a hook registered before
  // ours that sets request.tollgateIdentity from a verified credential.
  const fakeAuth = fp(async (app) => {
    app.decorateRequest('tollgateIdentity', null)
    app.addHook('onRoute', (route) => {
      const hook = async (request: FastifyRequest): Promise<void> => {
        const user = request.headers['x-test-user']
        if (typeof user === 'string') request.tollgateIdentity = { id: user, method: 'jwt', roles: [], permissions: [] }
      }
      route.onRequest = Array.isArray(route.onRequest) ? [...route.onRequest, hook] : route.onRequest ? [route.onRequest, hook] : [hook]
    })
  })
  const app = Fastify()
  await app.register(fakeAuth)
  await app.register(tollgateRateLimit, {})
  app.get('/me', { config: { rateLimit: { max: 1, window: '1m', by: 'user' } } }, async () => 'ok')
  t.teardown(() => app.close())
  await app.ready()
  t.same(await statuses(app, '/me', 2, { 'x-test-user': 'alice' }), [200, 429])
  t.same(await statuses(app, '/me', 2, { 'x-test-user': 'bob' }), [200, 429], 'another user has their own bucket')
  t.same(await statuses(app, '/me', 2), [200, 429], 'anonymous requests share the IP bucket')
  const other = await app.inject({ url: '/me', remoteAddress: '192.0.2.9' })
  t.equal(other.statusCode, 200, 'another anonymous IP has its own bucket')

  // No auth plugin at all: request.tollgateIdentity is undefined, the IP decides.
  const bare = await buildApp(t, {}, (app) => {
    app.get('/me', { config: { rateLimit: { max: 1, window: '1m', by: 'user' } } }, async () => 'ok')
  })
  t.same(await statuses(bare, '/me', 2, { 'x-test-user': 'alice' }), [200, 429])
})

t.test('the limiter runs after auth; refusals by auth spend the IP\'s failures budget, then the IP is refused before auth', async (t) => {
  const order: string[] = []
  const gate = fp(async (app) => {
    app.addHook('onRoute', (route) => {
      const hook = async (request: FastifyRequest): Promise<void> => {
        order.push('auth')
        if (request.headers.authorization !== 'ok') throw Object.assign(new Error('no'), { statusCode: 401 })
      }
      route.onRequest = [hook]
    })
  })
  const app = Fastify()
  await app.register(gate)
  await app.register(tollgateRateLimit, { default: { max: 1, window: '1m' } })
  app.get('/x', async () => { order.push('handler'); return 'ok' })
  t.teardown(() => app.close())
  await app.ready()
  // max 1: one refusal is within budget, the next one exhausts it, and from then on the
  // IP is answered 429 before auth runs, whatever it sends.
  t.same(await statuses(app, '/x', 3), [401, 401, 429])
  t.same(await statuses(app, '/x', 1, { authorization: 'ok' }), [429])
  t.same(order, ['auth', 'auth'], 'auth never ran for the refused requests')
})

t.test('requests auth accepts use the limiter\'s own bucket, not the failures budget', async (t) => {
  const gate = fp(async (app) => {
    app.addHook('onRoute', (route) => {
      route.onRequest = [async (request: FastifyRequest): Promise<void> => {
        if (request.headers.authorization !== 'ok') throw Object.assign(new Error('no'), { statusCode: 401 })
      }]
    })
  })
  const app = Fastify()
  await app.register(gate)
  await app.register(tollgateRateLimit, { default: { max: 2, window: '1m' } })
  app.get('/x', async () => 'ok')
  t.teardown(() => app.close())
  await app.ready()
  t.same(await statuses(app, '/x', 3, { authorization: 'ok' }), [200, 200, 429])
  t.same(await statuses(app, '/x', 1), [401], 'a failure still reaches auth: the failures budget is separate')
})

t.test('by: apiKey and header:<name> key by the value, falling back to the IP', async (t) => {
  const app = await buildApp(t, { apiKeyHeader: 'X-Key' }, (app) => {
    app.get('/k', { config: { rateLimit: { max: 1, window: '1m', by: 'apiKey' } } }, async () => 'ok')
    app.get('/h', { config: { rateLimit: { max: 1, window: '1m', by: 'header:X-Tenant' } } }, async () => 'ok')
  })
  t.same(await statuses(app, '/k', 2, { 'x-key': 'one' }), [200, 429])
  t.same(await statuses(app, '/k', 2, { 'x-key': 'two' }), [200, 429])
  t.same(await statuses(app, '/k', 2), [200, 429], 'no key: the IP bucket')
  t.same(await statuses(app, '/h', 2, { 'x-tenant': 'acme' }), [200, 429])
  t.same(await statuses(app, '/h', 1, { 'x-tenant': 'globex' }), [200])
})

t.test('request.tollgateRateLimit carries the verdict', async (t) => {
  const app = await buildApp(t, {}, (app) => {
    app.get('/x', { config: { rateLimit: { max: 5, window: '30s' } } }, async (request) => request.tollgateRateLimit)
    app.get('/free', async (request) => ({ info: request.tollgateRateLimit }))
  })
  t.same((await app.inject('/x')).json(), { limit: 5, remaining: 4, reset: 30 })
  t.same((await app.inject('/free')).json(), { info: null })
})

t.test('WebSocket upgrade requests pass through the hook like any GET', async (t) => {
  const app = await buildApp(t, {}, (app) => {
    app.get('/ws', { config: { rateLimit: { max: 1, window: '1m' } } }, async () => 'ok')
  })
  const headers = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }
  t.same(await statuses(app, '/ws', 2, headers), [200, 429])
})

t.test('a bad route config fails app.ready() naming the route and the key', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ max: -1, window: '1m' }, /route GET \/bad: config\.rateLimit\.max: must be a non-negative integer/],
    [{ max: 1 }, /config\.rateLimit\.window: is required/],
    [{ max: 1, window: 'soon' }, /config\.rateLimit\.window: invalid duration/],
    [{ max: 1, window: '1m', by: 'cookie' }, /config\.rateLimit\.by: must be ip, user, apiKey or header:<name>/],
    [{ max: 1, window: '1m', by: 'header:bad name' }, /config\.rateLimit\.by: "header:bad name" does not name a valid header/],
    [{ max: 1, window: '1m', algorithm: 'leaky' }, /config\.rateLimit\.algorithm: must be one of/],
    [{ max: 1, window: '1m', windw: '1m' }, /config\.rateLimit\.windw: unknown key/],
    [true, /config\.rateLimit: must be false or an object/]
  ]
  for (const [rateLimit, message] of cases) {
    const app = Fastify()
    await app.register(tollgateRateLimit, {})
    app.register(async (child) => {
      child.get('/bad', { config: { rateLimit: rateLimit as never } }, async () => 'ok')
    })
    await t.rejects(async () => { await app.ready() }, { code: 'TOLLGATE_RATE_LIMIT_INVALID_ROUTE_CONFIG', message })
    await app.close()
  }
})

t.test('a bad plugin option fails app.ready() naming the option', async (t) => {
  const app = Fastify()
  app.register(tollgateRateLimit, { default: { max: 1.5, window: '1m' } })
  await t.rejects(async () => { await app.ready() }, { code: 'TOLLGATE_RATE_LIMIT_INVALID_OPTION', message: /^default\.max: must be a non-negative integer/ })
  await app.close()
})

t.test('no timer or handle keeps the process alive after close (memory store)', async (t) => {
  const app = Fastify()
  await app.register(tollgateRateLimit, { default: { max: 1, window: '1m' } })
  await app.ready()
  await app.close()
  t.pass('closed')
})
