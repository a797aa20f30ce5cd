import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const GATEWAY = fileURLToPath(new URL('../dist/index.js', import.meta.url))
const run = promisify(execFile)

/**
 * Builds a gateway from `manifest` in a fresh process and lists the Redis and NATS client
 * libraries it loaded: each costs memory in every gateway, so only a manifest that uses
 * one may load it.
 */
async function clientLibrariesLoaded (manifest: object): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module'
    const { createGateway } = await import(${JSON.stringify(GATEWAY)})
    const app = await createGateway(${JSON.stringify(manifest)}, { logLevel: 'silent' })
    await app.ready()
    const loaded = Object.keys(createRequire(import.meta.url).cache)
    const names = ['ioredis', 'nats'].filter((name) => loaded.some((file) => file.includes('/node_modules/' + name + '/')))
    await app.close()
    process.stdout.write(JSON.stringify(names))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 })
  return JSON.parse(stdout) as string[]
}

const httpOnly = {
  version: 1,
  server: { host: '127.0.0.1', port: 0 },
  upstreams: { api: { targets: ['http://127.0.0.1:9'] } },
  routes: [{ prefix: '/api', upstream: 'api', auth: false }],
  rateLimit: { default: { max: 100, window: '1m', by: 'ip' } }
}

t.test('a gateway with HTTP upstreams and an in-memory rate limit loads neither ioredis nor nats', async (t) => {
  t.same(await clientLibrariesLoaded(httpOnly), [])
})

t.test('the Redis store loads ioredis, and a NATS upstream nats', async (t) => {
  t.same(await clientLibrariesLoaded({ ...httpOnly, redis: { url: 'redis://127.0.0.1:6379', keyPrefix: `tollgate-test:${process.pid}:` } }), ['ioredis'])
  const nats = {
    ...httpOnly,
    upstreams: { ...httpOnly.upstreams, orders: { transport: 'nest-nats', targets: ['nats://127.0.0.1:4222'] } },
    routes: [...httpOnly.routes, { prefix: '/orders', upstream: 'orders', auth: false, patterns: [{ method: 'GET', path: '/', pattern: { cmd: 'list' } }] }]
  }
  t.same(await clientLibrariesLoaded(nats), ['nats'])
})
