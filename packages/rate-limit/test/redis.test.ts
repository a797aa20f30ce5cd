import { tollgateRuntime } from '@tollgate/common'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import tollgateRateLimit, { errors, type TollgateRateLimitOptions } from '../src/index.js'
import { toDecision } from '../src/store/redis.js'
import { statuses, TestClock } from './helpers/app.js'
import { cleanupOnTeardown, connectRedis, keysUnder, REDIS_URL, uniquePrefix } from './helpers/redis.js'
import { closedPort, eventually } from './helpers/tcp-proxy.js'

interface Harness {
  app: FastifyInstance
  logs: Array<Record<string, unknown>>
  events: { rateLimited: string[], storeError: number }
}

async function harness (t: Test, options: TollgateRateLimitOptions, routes: (app: FastifyInstance) => void): Promise<Harness> {
  const logs: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { logs.push(JSON.parse(line)) } } } })
  const events = { rateLimited: [] as string[], storeError: 0 }
  tollgateRuntime(app).events.on('rateLimited', (event) => { events.rateLimited.push(event.route) })
  tollgateRuntime(app).events.on('storeError', (event) => { if (event.store === 'redis') events.storeError++ })
  await app.register(tollgateRateLimit, options)
  routes(app)
  t.teardown(() => app.close())
  await app.ready()
  return { app, logs, events }
}

async function redisReady (app: FastifyInstance): Promise<boolean> {
  return await eventually(async () => (await app.tollgate.checkReadiness()).every((check) => check.ok))
}

t.test('limits through Redis: contract headers, keys under keyPrefix, TTL equal to the window', async (t) => {
  const redis = await connectRedis(t)
  const prefix = uniquePrefix('basic')
  cleanupOnTeardown(t, prefix)
  const clock = new TestClock()
  const { app, events } = await harness(t, { now: clock.now, redis: { url: REDIS_URL, keyPrefix: prefix } }, (app) => {
    app.get('/a', { config: { rateLimit: { max: 2, window: '1m' } } }, async () => 'ok')
  })
  t.ok(await redisReady(app), 'the readiness check "redis" passes once connected')
  const checks = await app.tollgate.checkReadiness()
  t.same(checks.map((c) => c.name), ['redis'])

  const first = await app.inject('/a')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit-limit'], '2')
  t.equal(first.headers['ratelimit-remaining'], '1')
  t.equal(first.headers['ratelimit-reset'], '60')
  t.equal((await app.inject('/a')).statusCode, 200)
  clock.advance(30_000)
  const refused = await app.inject('/a')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '30')
  t.equal(refused.headers['ratelimit-remaining'], '0')
  t.equal(refused.json().code, 'TOLLGATE_RATE_LIMIT_EXCEEDED')
  t.same(events.rateLimited, ['/a'])

  const keys = await keysUnder(redis, prefix)
  t.equal(keys.length, 1)
  t.ok(keys[0]!.startsWith(`${prefix}rl:fw:60000|/a|i:`), keys[0]!)
  const ttl = await redis.pttl(keys[0]!)
  t.ok(ttl > 55_000 && ttl <= 60_000, `TTL ${ttl} ms is the window`)
})

t.test('hostile keys: values are hashed to a fixed size, secrets never stored in clear', async (t) => {
  const redis = await connectRedis(t)
  const prefix = uniquePrefix('hostile')
  cleanupOnTeardown(t, prefix)
  const { app } = await harness(t, { redis: { url: REDIS_URL, keyPrefix: prefix } }, (app) => {
    app.get('/k', { config: { rateLimit: { max: 5, window: '1m', by: 'apiKey' } } }, async () => 'ok')
    app.get('/h', { config: { rateLimit: { max: 5, window: '1m', by: 'header:x-tenant' } } }, async () => 'ok')
  })
  t.ok(await redisReady(app))
  const secret = 'super-secret-api-key-value'
  const huge = 'x'.repeat(8000)
  await app.inject({ url: '/k', headers: { 'x-api-key': secret } })
  await app.inject({ url: '/h', headers: { 'x-tenant': huge } })
  await app.inject({ url: '/h', headers: { 'x-tenant': `${huge}\u00e9*?[]` } })
  const keys = await keysUnder(redis, prefix)
  t.equal(keys.length, 3)
  for (const key of keys) {
    t.notOk(key.includes(secret), 'the API key is not in the key name')
    t.ok(key.length < prefix.length + 60, `key of bounded length (${key.length})`)
  }
})

t.test('an existing ioredis client is used and never closed by the plugin', async (t) => {
  const prefix = uniquePrefix('shared-client')
  cleanupOnTeardown(t, prefix)
  const client = new Redis(REDIS_URL, { enableOfflineQueue: false, lazyConnect: true })
  await client.connect()
  t.teardown(() => { client.disconnect() })
  const app = Fastify()
  await app.register(tollgateRateLimit, { redis: { client, keyPrefix: prefix }, default: { max: 1, window: '1m' } })
  app.get('/x', async () => 'ok')
  await app.ready()
  t.same(await statuses(app, '/x', 2), [200, 429])
  await app.close()
  t.equal(client.status, 'ready', 'still connected after app.close()')
  t.equal(await client.ping(), 'PONG')

  // Passed directly as `redis` (no options object): the default prefix, so clean it ourselves.
  const direct = Fastify()
  await direct.register(tollgateRateLimit, { redis: client, default: { max: 1, window: '1m', by: 'header:x-test-run' } })
  direct.get('/x', async () => 'ok')
  await direct.ready()
  const run = uniquePrefix('run')
  t.same(await statuses(direct, '/x', 2, { 'x-test-run': run }), [200, 429])
  const keys = await keysUnder(client, 'tollgate:rl:fw:60000|/x|h:x-test-run:')
  t.ok(keys.length >= 1, 'keys under the default prefix tollgate:')
  await direct.close()
  t.equal(client.status, 'ready')
})

for (const policy of ['allow', 'deny'] as const) {
  t.test(`unreachable Redis (closed port), onStoreError: ${policy}: the app starts, requests never hang`, async (t) => {
    const port = await closedPort()
    const clock = new TestClock()
    const { app, logs, events } = await harness(t, {
      now: clock.now,
      onStoreError: policy,
      redis: { url: `redis://127.0.0.1:${port}` },
      default: { max: 1, window: '1m' }
    }, (app) => {
      app.get('/x', async () => 'ok')
      app.get('/healthz', { config: { rateLimit: false } }, async () => 'ok')
    })
    const readiness = await app.tollgate.checkReadiness()
    t.same(readiness.map((c) => [c.name, c.ok]), [['redis', false]], 'readiness reports redis not ok')
    t.match(readiness[0]!.message, /redis connection is/)
    t.notMatch(readiness[0]!.message, String(port), 'no address in the readiness message')

    const responses = []
    for (let i = 0; i < 20; i++) responses.push(await app.inject('/x'))
    if (policy === 'allow') {
      t.same(responses.map((r) => r.statusCode), Array(20).fill(200), 'fail open: every request admitted')
      // The contract: every admitted answer of a limited route carries the three headers.
      // Nothing was counted, so the whole quota remains, for a whole window.
      t.equal(responses[0]!.headers['ratelimit-limit'], '1')
      t.equal(responses[0]!.headers['ratelimit-remaining'], '1')
      t.equal(responses[0]!.headers['ratelimit-reset'], '60')
    } else {
      t.same(responses.map((r) => r.statusCode), Array(20).fill(503), 'fail closed: 503')
      t.equal(responses[0]!.headers['retry-after'], '5')
      t.equal(responses[0]!.json().code, 'TOLLGATE_RATE_LIMIT_STORE_UNAVAILABLE')
      t.notMatch(responses[0]!.body, String(port), 'the cause is not sent to the client')
    }
    t.equal(events.storeError, 20, 'every failed request is counted through the storeError event')
    t.equal((await app.inject('/healthz')).statusCode, 200, 'unlimited routes never touch the store')

    const failures = (): Array<Record<string, unknown>> => logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('rate-limit store failed'))
    t.equal(failures().length, 1, 'logged once per interval, not per request')
    t.equal(failures()[0]!.plugin, '@tollgate/rate-limit', 'through the plugin child logger')
    t.equal(failures()[0]!.level, 50)
    clock.advance(10_000)
    await app.inject('/x')
    t.equal(failures().length, 2, 'and again after the interval')
    t.ok((failures()[1]!.suppressed as number) >= 19, 'with the number of failures not logged')
  })
}

t.test('a shared client answering with another script under the command name gets the outage policy, not a made-up decision', async (t) => {
  const prefix = uniquePrefix('foreign-script')
  cleanupOnTeardown(t, prefix)
  const client = await connectRedis(t)
  // An older Tollgate answered with a table; the plugin keeps a command already defined on a shared client.
  client.defineCommand('tollgateRateLimitFixedWindow', { numberOfKeys: 1, lua: 'return {1, 5, 60000, 0}' })
  const { app, logs, events } = await harness(t, {
    algorithm: 'fixed-window',
    onStoreError: 'deny',
    redis: { client, keyPrefix: prefix },
    default: { max: 10, window: '1m' }
  }, (app) => { app.get('/x', async () => 'ok') })
  const refused = await app.inject('/x')
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'TOLLGATE_RATE_LIMIT_STORE_UNAVAILABLE')
  t.equal(events.storeError, 1)
  const failure = logs.find((line) => typeof line.msg === 'string' && line.msg.startsWith('rate-limit store failed'))
  t.match(JSON.stringify(failure), /answered \[1,5,60000,0\], not a decision/, 'the log names what Redis answered')
})

t.test('script replies are read exactly, and anything else is refused', async (t) => {
  t.same(toDecision('1 41 60000 0'), { allowed: true, remaining: 41, resetMs: 60000, retryAfterMs: 0 })
  t.same(toDecision('0 0 1500 1500'), { allowed: false, remaining: 0, resetMs: 1500, retryAfterMs: 1500 })
  t.same(toDecision('1 9007199254740991 172800000 0'), { allowed: true, remaining: 9007199254740991, resetMs: 172800000, retryAfterMs: 0 }, 'large integers stay exact')
  for (const bad of [[1, 41, 60000, 0], '1 41 60000', '1 41 6e4 0', '1 41 60000 -1', '2 41 60000 0', '1 12345678901234567 0 0', '1 x 1 0', '1 41 60000 0 0', '', null, 7]) {
    t.equal(toDecision(bad), null, `refused: ${JSON.stringify(bad)}`)
  }
})

t.test('a route limited under Redis answers 429 with the exported error class', async (t) => {
  const prefix = uniquePrefix('errclass')
  cleanupOnTeardown(t, prefix)
  const app = Fastify()
  const seen: unknown[] = []
  app.setErrorHandler((error, _request, reply) => { seen.push(error); reply.code(429).send('limited') })
  await app.register(tollgateRateLimit, { algorithm: 'token-bucket', redis: { url: REDIS_URL, keyPrefix: prefix }, default: { max: 1, window: '1h' } })
  app.get('/x', async () => 'ok')
  t.teardown(() => app.close())
  await app.ready()
  t.ok(await redisReady(app))
  t.same(await statuses(app, '/x', 2), [200, 429])
  t.ok(seen[0] instanceof errors.RateLimitExceededError)
})

t.test('Redis options are validated at registration', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ url: 'http://127.0.0.1' }, /^redis\.url: must be a redis:\/\/ or rediss:\/\/ URL/],
    [{}, /^redis: url or client is required/],
    [{ url: REDIS_URL, commandTimeout: 'fast' }, /^redis\.commandTimeout: invalid duration/],
    [{ url: REDIS_URL, keyprefix: 'x' }, /^redis\.keyprefix: unknown key/],
    ['redis://127.0.0.1', /^redis: must be an object/]
  ]
  for (const [redis, message] of cases) {
    const app = Fastify()
    app.register(tollgateRateLimit, { redis: redis as never })
    await t.rejects(async () => { await app.ready() }, { code: 'TOLLGATE_RATE_LIMIT_INVALID_OPTION', message })
    await app.close()
  }
})
