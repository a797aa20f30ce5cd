// Registered inside a user's prefixed plugin (`app.register(child, { prefix: '/v1' })`), the
// routes were created under the prefix but the path checks and the rewrite measured the raw
// URL from the route's own prefix: most requests got 400 "path does not match the route
// prefix", and where the two prefixes had the same length the upstream got the wrong path.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { request } from 'undici'
import { WebSocket } from 'ws'
import tollgateProxy, { type ProxyOptions } from '../../src/index.js'
import { listen, upstream } from '../helpers/servers.js'

async function mounted (t: Test, mounts: Record<string, ProxyOptions>): Promise<string> {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  for (const [prefix, options] of Object.entries(mounts)) {
    await app.register(async (child) => { await child.register(tollgateProxy, options) }, { prefix })
  }
  return await listen(app)
}

t.test('paths under a plugin prefix are checked and rewritten from the whole prefix', async (t) => {
  const origin = await upstream(t)
  const base = await mounted(t, {
    '/v1': {
      upstreams: { posts: { targets: [origin.url] } },
      routes: [{ prefix: '/posts', upstream: 'posts' }, { prefix: '/ab', upstream: 'posts', rewritePrefix: '/internal' }]
    }
  })
  const cases: Array<[string, string]> = [['/v1/posts/1', '/1'], ['/v1/posts', '/'], ['/v1/ab/x?q=1', '/internal/x?q=1']]
  for (const [path, expected] of cases) {
    const response = await request(`${base}${path}`)
    t.equal(response.statusCode, 200, path)
    await response.body.dump()
    t.equal(origin.seen.at(-1)?.url, expected, `${path} reaches the upstream as ${expected}`)
  }
  const outside = await request(`${base}/v1/postsfoo`)
  t.equal(outside.statusCode, 404, 'a path that only starts like the prefix is still not the route')
  await outside.body.dump()
})

t.test('the plugin registered twice, in two prefixed scopes, serves both', async (t) => {
  const origin = await upstream(t)
  const options = (): ProxyOptions => ({ upstreams: { api: { targets: [origin.url] } }, routes: [{ prefix: '/api', upstream: 'api', rewritePrefix: '/backend' }] })
  const base = await mounted(t, { '/v1': options(), '/v2': options() })
  for (const version of ['v1', 'v2']) {
    const response = await request(`${base}/${version}/api/items`)
    t.equal(response.statusCode, 200, version)
    await response.body.dump()
    t.equal(origin.seen.at(-1)?.url, '/backend/items')
  }
})

t.test('a WebSocket route under a plugin prefix tunnels with the rewritten path', async (t) => {
  const { WebSocketServer } = await import('ws')
  const { createServer } = await import('node:http')
  const { listenWebSockets } = await import('../helpers/servers.js')
  const server = createServer()
  const wss = new WebSocketServer({ server })
  const paths: string[] = []
  wss.on('connection', (socket, req) => { paths.push(req.url!); socket.on('message', (data) => { socket.send(data) }) })
  const url = await listenWebSockets(t, server, wss)
  const base = await mounted(t, { '/v1': { upstreams: { chat: { targets: [url] } }, routes: [{ prefix: '/chat', upstream: 'chat', rewritePrefix: '/ws', websocket: true }] } })
  const client = new WebSocket(`${base.replace('http', 'ws')}/v1/chat/room`)
  t.teardown(() => { client.terminate() })
  await new Promise<void>((resolve, reject) => { client.once('open', () => { resolve() }); client.once('error', reject) })
  client.send('ping')
  const echoed = await new Promise<string>((resolve) => { client.once('message', (data) => { resolve(String(data)) }) })
  t.equal(echoed, 'ping')
  t.same(paths, ['/ws/room'])
})

t.test('app.tollgateProxy reports the upstreams of every registration', async (t) => {
  const origin = await upstream(t)
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tollgateProxy, { upstreams: { a: { targets: [origin.url] } }, routes: [{ prefix: '/a', upstream: 'a' }] })
  await app.register(tollgateProxy, { upstreams: { b: { targets: [origin.url] } }, routes: [{ prefix: '/b', upstream: 'b' }] })
  await app.ready()
  t.same(app.tollgateProxy.upstreams().map((one) => one.name), ['a', 'b'])
  for (const path of ['/a/x', '/b/x']) t.equal((await app.inject({ url: path })).statusCode, 200, path)
})
