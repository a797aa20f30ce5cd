// Audit finding: with `app.register(tollgateRateLimit, ...)` not awaited (the usual Fastify
// style without top-level await, and CommonJS), the routes declared right after it were added
// before the plugin's onRoute hook existed: neither `default` nor their `config.rateLimit`
// applied (every request 200, no RateLimit-* headers, no warning), and an invalid
// `config.rateLimit` was accepted.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import tollgateRateLimit, { errors, type TollgateRateLimitOptions } from '../../src/index.js'
import { statuses } from '../helpers/app.js'
import { cleanupOnTeardown, connectRedis, keysUnder, REDIS_URL, uniquePrefix } from '../helpers/redis.js'

interface Logged { level: number, msg: string, route?: string, err?: { code?: string } }

/** An app whose plugin registration is not awaited, with `routes` declared right after it. */
async function unawaited (t: Test, options: TollgateRateLimitOptions, routes: (app: FastifyInstance) => void, before?: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance, logs: Logged[] }> {
  const logs: Logged[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { logs.push(JSON.parse(line) as Logged) } } } })
  before?.(app)
  void app.register(tollgateRateLimit, options)
  routes(app)
  t.teardown(() => app.close())
  await app.ready()
  return { app, logs }
}

t.test('routes declared right after an unawaited registration get the default and their own config.rateLimit', async (t) => {
  const { app } = await unawaited(t, { default: { max: 1, window: '1m' } }, (app) => {
    app.get('/default', async () => 'ok')
    app.get('/strict', { config: { rateLimit: { max: 2, window: '1m' } } }, async () => 'ok')
    app.get('/free', { config: { rateLimit: false } }, async () => 'ok')
  })
  const first = await app.inject('/strict')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit-limit'], '2', 'the route\'s own max, not the default')
  t.equal(first.headers['ratelimit-remaining'], '1')
  t.equal(first.headers['ratelimit-reset'], '60')
  const second = await app.inject('/strict')
  t.equal(second.headers['ratelimit-remaining'], '0')
  const refused = await app.inject('/strict')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '60')
  t.equal(refused.headers['ratelimit-remaining'], '0')
  t.equal(refused.json().code, 'TOLLGATE_RATE_LIMIT_EXCEEDED')

  t.same(await statuses(app, '/default', 3), [200, 429, 429], 'the default applies')
  t.equal((await app.inject('/default')).headers['ratelimit-limit'], '1')
  t.same(await statuses(app, '/free', 3), [200, 200, 200], 'rateLimit: false is never limited')
  t.notOk('ratelimit-limit' in (await app.inject('/free')).headers)

  const head = await app.inject({ method: 'HEAD', url: '/strict' })
  t.equal(head.statusCode, 429, 'HEAD shares its GET route\'s bucket')
  t.same(await statuses(app, '/nowhere', 2), [404, 404], 'unmatched requests are not limited')
})

t.test('an invalid config.rateLimit on such a route fails closed: 500 with the route and key, logged once', async (t) => {
  const { app, logs } = await unawaited(t, {}, (app) => {
    // @ts-expect-error max must be a number: what a JavaScript user can write
    app.get('/typo', { config: { rateLimit: { max: 'one', window: '1m' } } }, async () => 'never reached')
    app.get('/ok', async () => 'ok')
  })
  for (let i = 0; i < 2; i++) {
    const response = await app.inject('/typo')
    t.equal(response.statusCode, 500)
    t.equal(response.json().code, 'TOLLGATE_RATE_LIMIT_INVALID_ROUTE_CONFIG')
    t.match(response.json().message, 'route GET /typo: config.rateLimit.max: must be a non-negative integer')
    t.not(response.body, 'never reached')
  }
  const fromPlugin = logs.filter((line) => line.level === 50 && line.route === 'GET /typo')
  t.equal(fromPlugin.length, 1, 'the plugin logs the bad config once, not per request')
  t.match(fromPlugin[0]!.msg, /added before @tollgate\/rate-limit was loaded.*register the plugin with await/)
  t.equal(fromPlugin[0]!.err?.code, 'TOLLGATE_RATE_LIMIT_INVALID_ROUTE_CONFIG')
  t.ok(new errors.InvalidRouteConfigError('x') instanceof Error)
  t.same(await statuses(app, '/ok', 2), [200, 200], 'other routes are unaffected')
})

t.test('with the net installed, routes the onRoute hook compiled are counted once, and unlimited ones stay unlimited', async (t) => {
  const { app } = await unawaited(t, {}, (app) => {
    app.get('/late', { config: { rateLimit: { max: 3, window: '1m' } } }, async () => 'ok')
    app.after(() => {
      app.get('/normal', { config: { rateLimit: { max: 3, window: '1m' } } }, async () => 'ok')
      app.get('/normal-free', async () => 'ok')
    })
  })
  const remaining: string[] = []
  for (let i = 0; i < 3; i++) remaining.push(String((await app.inject('/normal')).headers['ratelimit-remaining']))
  t.same(remaining, ['2', '1', '0'], 'one decision per request, not two')
  t.equal((await app.inject('/normal')).statusCode, 429)
  t.same(await statuses(app, '/normal-free', 4), [200, 200, 200, 200])
  t.same(await statuses(app, '/late', 4), [200, 200, 200, 429])
})

t.test('an awaited registration before the routes installs no safety-net hook (the hot path is unchanged)', async (t) => {
  const app = Fastify()
  await app.register(tollgateRateLimit, { default: { max: 1, window: '1m' } })
  app.get('/x', async () => 'ok')
  t.teardown(() => app.close())
  await app.ready()
  const hooks = app.printRoutes({ includeHooks: true })
  t.match(hooks, /tollgateRateLimitMemory/, 'the route carries its own hook')
  t.notMatch(hooks, /tollgateRateLimitLate/, 'and no global net hook')

  const { app: late } = await unawaited(t, { default: { max: 1, window: '1m' } }, (app) => { app.get('/x', async () => 'ok') })
  t.match(late.printRoutes({ includeHooks: true }), /tollgateRateLimitLateRoute/, 'the net is there when routes came first')
})

t.test('on such routes the limiter still runs after an (also unawaited) auth plugin: by user, and failed auth counts', async (t) => {
  const order: string[] = []
  // What @tollgate/auth's own safety net does for routes it did not see: a global preHandler.
  const lateAuth = fp(async (app) => {
    app.decorateRequest('tollgateIdentity', null)
    app.addHook('preHandler', async (request: FastifyRequest) => {
      order.push('auth')
      const user = request.headers['x-test-user']
      if (typeof user !== 'string') throw Object.assign(new Error('no'), { statusCode: 401 })
      request.tollgateIdentity = { id: user, method: 'jwt', roles: [], permissions: [] }
    })
  })
  const { app } = await unawaited(t, {}, (app) => {
    app.get('/me', { config: { rateLimit: { max: 1, window: '1m', by: 'user' } } }, async () => 'ok')
  }, (app) => { void app.register(lateAuth) })
  t.same(await statuses(app, '/me', 2, { 'x-test-user': 'alice' }), [200, 429])
  t.same(await statuses(app, '/me', 2, { 'x-test-user': 'bob' }), [200, 429], 'another user has their own bucket')
  order.length = 0
  // max 1: one refusal is within the failures budget, the next exhausts it, then 429 before auth.
  t.same(await statuses(app, '/me', 3), [401, 401, 429])
  t.same(await statuses(app, '/me', 1, { 'x-test-user': 'carol' }), [429], 'the IP is refused before auth')
  t.same(order, ['auth', 'auth'], 'auth never ran for the refused requests')
})

t.test('through Redis too: an unawaited registration limits the routes declared after it', async (t) => {
  const redis = await connectRedis(t)
  const prefix = uniquePrefix('unawaited')
  cleanupOnTeardown(t, prefix)
  const { app } = await unawaited(t, { onStoreError: 'deny', redis: { url: REDIS_URL, keyPrefix: prefix } }, (app) => {
    app.get('/r', { config: { rateLimit: { max: 2, window: '1m' } } }, async () => 'ok')
  })
  const first = await app.inject('/r')
  t.equal(first.statusCode, 200, 'counted in Redis (a 503 would mean the store failed)')
  t.equal(first.headers['ratelimit-remaining'], '1')
  t.same(await statuses(app, '/r', 2), [200, 429])
  const keys = await keysUnder(redis, prefix)
  t.same(keys, [`${prefix}rl:fw:60000|/r|i:127.0.0.1`])
})
