import { tollgateRuntime } from '@tollgate/common'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import tollgateRateLimit from '../src/index.js'
import { TestClock } from './helpers/app.js'
import { cleanupOnTeardown, uniquePrefix } from './helpers/redis.js'
import { eventually, startProxy, type TcpProxy } from './helpers/tcp-proxy.js'

interface Setup { app: FastifyInstance, proxy: TcpProxy, logs: Array<Record<string, unknown>>, storeErrors: () => number }

async function setup (t: Test, policy: 'allow' | 'deny'): Promise<Setup> {
  const proxy = await startProxy(t)
  const prefix = uniquePrefix(`outage-${policy}`)
  cleanupOnTeardown(t, prefix)
  const clock = new TestClock()
  const logs: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { logs.push(JSON.parse(line)) } } } })
  let storeErrors = 0
  tollgateRuntime(app).events.on('storeError', () => { storeErrors++ })
  await app.register(tollgateRateLimit, {
    now: clock.now,
    onStoreError: policy,
    redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, commandTimeout: '100ms' },
    default: { max: 5, window: '1h' }
  })
  app.get('/x', async () => 'ok')
  t.teardown(() => app.close())
  await app.ready()
  return { app, proxy, logs, storeErrors: () => storeErrors }
}

async function ready (app: FastifyInstance): Promise<boolean> {
  return (await app.tollgate.checkReadiness()).every((check) => check.ok)
}

for (const policy of ['allow', 'deny'] as const) {
  const failed = policy === 'allow' ? 200 : 503

  t.test(`Redis stops mid-run (connections dropped), onStoreError: ${policy}, then recovers without a restart`, async (t) => {
    const { app, proxy, logs, storeErrors } = await setup(t, policy)
    t.ok(await eventually(() => ready(app)), 'connected through the proxy')
    const before = await app.inject('/x')
    t.equal(before.statusCode, 200)
    t.equal(before.headers['ratelimit-remaining'], '4')

    await proxy.stop()
    t.ok(await eventually(async () => !(await ready(app))), 'readiness turns not ok')
    const during = []
    for (let i = 0; i < 10; i++) during.push(await app.inject('/x'))
    t.same(during.map((r) => r.statusCode), Array(10).fill(failed))
    if (policy === 'deny') t.equal(during[0]!.headers['retry-after'], '5')
    t.equal(storeErrors(), 10)

    await proxy.start()
    t.ok(await eventually(() => ready(app)), 'readiness recovers by itself')
    const after = await app.inject('/x')
    t.equal(after.statusCode, 200)
    t.equal(after.headers['ratelimit-remaining'], '3', 'the count kept in Redis continues; nothing from the outage was replayed')
    t.ok(logs.some((l) => l.msg === 'rate-limit store recovered'), 'recovery is logged')
  })

  t.test(`Redis hangs mid-run (no answers), onStoreError: ${policy}: the command timeout answers for it`, async (t) => {
    const { app, proxy, storeErrors } = await setup(t, policy)
    t.ok(await eventually(() => ready(app)))
    t.equal((await app.inject('/x')).statusCode, 200)
    proxy.blackhole()
    const during = await Promise.all(Array.from({ length: 5 }, async () => await app.inject('/x')))
    t.same(during.map((r) => r.statusCode), Array(5).fill(failed), 'every waiting request is decided by the policy')
    t.equal(storeErrors(), 5)
    t.notOk(await ready(app), 'a hung Redis is not ready')

    // The hung connection is dropped; ioredis reconnects through the restarted proxy.
    await proxy.stop()
    await proxy.start()
    t.ok(await eventually(() => ready(app)), 'recovered')
    const after = await app.inject('/x')
    t.equal(after.statusCode, 200)
    t.equal(after.headers['ratelimit-remaining'], '3', 'requests that timed out were not counted later')
  })
}

t.test('a given client without a command timeout: the plugin bounds each call itself, and never closes it', async (t) => {
  const proxy = await startProxy(t)
  const prefix = uniquePrefix('outage-given-client')
  cleanupOnTeardown(t, prefix)
  const client = new Redis(`redis://127.0.0.1:${proxy.port}`, { enableOfflineQueue: false, lazyConnect: true, maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await client.connect()
  const app = Fastify()
  await app.register(tollgateRateLimit, {
    onStoreError: 'deny',
    redis: { client, keyPrefix: prefix, commandTimeout: '100ms' },
    default: { max: 5, window: '1h' }
  })
  app.get('/x', async () => 'ok')
  t.teardown(() => app.close())
  await app.ready()
  t.ok(await ready(app))
  t.equal((await app.inject('/x')).statusCode, 200)
  proxy.blackhole()
  const during = await app.inject('/x')
  t.equal(during.statusCode, 503, 'answered by the policy after the plugin\'s own timeout')
  t.equal(during.headers['retry-after'], '5')
  const readiness = await app.tollgate.checkReadiness()
  t.same(readiness.map((c) => [c.name, c.ok]), [['redis', false]])
  t.match(readiness[0]!.message, /no answer within 100 ms/)
  await app.close()
  t.not(client.status, 'end', 'the given client was not closed by the plugin')
})
