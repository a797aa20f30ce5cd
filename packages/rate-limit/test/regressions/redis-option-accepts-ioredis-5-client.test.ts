// Audit finding: a user's ioredis@5 client (what @fastify/redis gives as `app.redis`) was
// rejected by the `redis` option's type (TS2769: ioredis 5's `Redis` is not ioredis 6's), though
// it works at runtime. The option is now typed by the shape the store uses (RedisClientLike).
// The type half of this test is checked by `tsc -p tsconfig.tests.json` (the root typecheck);
// the runtime half drives both majors' clients against a real Redis.
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import { Redis as Redis6 } from 'ioredis'
import t from 'tap'
import tollgateRateLimit, { type RedisClientLike, type RedisStoreOptions, type TollgateRateLimitOptions } from '../../src/index.js'
// This package depends on ioredis 6 only; the workspace's bench depends on ioredis 5. Its copy
// is borrowed here (types and runtime) so that a real ioredis 5 client is what is checked.
import type { Redis as Redis5 } from '../../../../bench/node_modules/ioredis/built/index.js'
import { statuses } from '../helpers/app.js'
import { cleanupOnTeardown, connectRedis, keysUnder, REDIS_URL, uniquePrefix } from '../helpers/redis.js'

const fromBench = createRequire(new URL('../../../../bench/package.json', import.meta.url))
const ioredis5 = fromBench('ioredis') as { Redis: typeof Redis5 }
const ioredis5Version = (fromBench('ioredis/package.json') as { version: string }).version

// ── Types: both majors' clients fit both forms of the option; a non-client does not ──
function typeChecks (v5: Redis5, v6: Redis6): TollgateRateLimitOptions[] {
  const direct5: TollgateRateLimitOptions = { redis: v5 }
  const wrapped5: TollgateRateLimitOptions = { redis: { client: v5, keyPrefix: 'x:' } }
  const direct6: TollgateRateLimitOptions = { redis: v6 }
  const wrapped6: RedisStoreOptions = { client: v6 }
  const like: RedisClientLike = v5
  // @ts-expect-error not a client (no defineCommand, ping, on/off): the option is not `any`
  const notAClient: TollgateRateLimitOptions = { redis: { client: { status: 'ready', options: {} } } }
  return [direct5, wrapped5, direct6, { redis: wrapped6 }, { redis: like }, notAClient]
}

t.test('the ioredis 5 borrowed for this test is ioredis 5', async (t) => {
  t.match(ioredis5Version, /^5\./)
  t.equal(typeof typeChecks, 'function')
})

for (const [major, make] of [
  ['5', () => new ioredis5.Redis(REDIS_URL, { enableOfflineQueue: false, lazyConnect: true })],
  ['6', () => new Redis6(REDIS_URL, { enableOfflineQueue: false, lazyConnect: true })]
] as const) {
  t.test(`a user's ioredis ${major} client limits through Redis, given directly or as redis.client`, async (t) => {
    const redis = await connectRedis(t)
    const client = make()
    await client.connect()
    t.teardown(() => { client.disconnect() })
    const prefix = uniquePrefix(`ioredis-${major}`)
    cleanupOnTeardown(t, prefix)

    const app = Fastify()
    await app.register(tollgateRateLimit, { onStoreError: 'deny', redis: { client, keyPrefix: prefix }, default: { max: 1, window: '1m' } })
    app.get('/x', async () => 'ok')
    await app.ready()
    t.same(await statuses(app, '/x', 2), [200, 429], 'decided in Redis (a store failure would be 503)')
    t.same(await keysUnder(redis, prefix), [`${prefix}rl:fw:60000|/x|i:127.0.0.1`])
    t.same((await app.tollgate.checkReadiness()).map((check) => check.ok), [true])
    await app.close()
    t.equal(client.status, 'ready', 'never closed by the plugin')

    // Given directly: the default prefix 'tollgate:', so the bucket is keyed by a fresh header value.
    const direct = Fastify()
    await direct.register(tollgateRateLimit, { onStoreError: 'deny', redis: client, default: { max: 1, window: '1m', by: 'header:x-test-run' } })
    direct.get('/x', async () => 'ok')
    await direct.ready()
    t.same(await statuses(direct, '/x', 2, { 'x-test-run': uniquePrefix('run') }), [200, 429])
    await direct.close()
  })
}
