import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { WebSocket, WebSocketServer } from 'ws'
import tollgateProxy from '../src/index.js'
import { closedPort, listen, listenWebSockets, upstream } from './helpers/servers.js'

type Test = Parameters<typeof upstream>[0]

/** A ws echo server on 127.0.0.1 recording each upgrade request. */
async function wsUpstream (t: Test): Promise<{ url: string, upgrades: IncomingMessage[] }> {
  const server = createServer((_req, res) => { res.end('plain') })
  const wss = new WebSocketServer({ server })
  const upgrades: IncomingMessage[] = []
  wss.on('connection', (socket, req) => {
    upgrades.push(req)
    socket.on('message', (data, binary) => { socket.send(data, { binary }) })
  })
  return { url: await listenWebSockets(t, server, wss), upgrades }
}

/** Opens a client socket; resolves with the open socket or the HTTP status of a refusal. */
async function open (url: string, headers: Record<string, string> = {}): Promise<{ socket?: WebSocket, status?: number, body?: string }> {
  return await new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    socket.on('open', () => { resolve({ socket }) })
    socket.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode!, body }) })
    })
    socket.on('error', reject)
  })
}

async function app (t: Test, target: string, extra?: Parameters<typeof Fastify>[0]): Promise<{ base: string, fastify: ReturnType<typeof Fastify> }> {
  const fastify = Fastify(extra)
  t.teardown(async () => { await fastify.close() })
  await fastify.register(fp(async (instance) => {
    instance.addHook('onRoute', (route) => {
      const hook = async (request: { headers: Record<string, unknown> }, reply: { code: (n: number) => { send: (b: unknown) => void } }): Promise<void> => {
        if (request.headers['x-deny'] !== undefined) reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'no' })
      }
      const existing = route.onRequest
      route.onRequest = existing === undefined ? [hook as never] : [...(Array.isArray(existing) ? existing : [existing]), hook as never]
    })
  }, { name: 'fake-auth' }))
  await fastify.register(tollgateProxy, {
    upstreams: { chat: { targets: [target], timeout: '2s' } },
    routes: [{ prefix: '/ws', upstream: 'chat', rewritePrefix: '/socket', websocket: true }],
    healthChecks: false
  })
  const base = (await listen(fastify)).replace('http:', 'ws:')
  return { base, fastify }
}

t.test('a WebSocket is proxied after the upstream answered 101, with the rewritten path and forwarding headers', async (t) => {
  const chat = await wsUpstream(t)
  const { base } = await app(t, chat.url)
  const { socket } = await open(`${base}/ws/room?x=1`, { 'x-forwarded-for': '6.6.6.6' })
  t.ok(socket, 'opened')
  const echoed = await new Promise<string>((resolve) => {
    socket!.once('message', (data) => { resolve(data.toString()) })
    socket!.send('hello through the gateway')
  })
  t.equal(echoed, 'hello through the gateway')
  t.equal(chat.upgrades[0]!.url, '/socket/room?x=1')
  t.equal(chat.upgrades[0]!.headers['x-forwarded-for'], '127.0.0.1')
  const closed = new Promise<number>((resolve) => socket!.on('close', (code) => { resolve(code) }))
  socket!.close(4001)
  t.equal(await closed, 4001, 'close codes pass through')
})

t.test('route hooks run first: a refused upgrade is a plain HTTP answer and the upstream is never contacted', async (t) => {
  const chat = await wsUpstream(t)
  const { base } = await app(t, chat.url)
  const res = await open(`${base}/ws/room`, { 'x-deny': '1' })
  t.equal(res.status, 401)
  t.equal(chat.upgrades.length, 0)
  const bad = await open(`${base}/ws/..%2fadmin`)
  t.equal(bad.status, 400)
  t.equal(chat.upgrades.length, 0)
})

t.test('an upstream that refuses the upgrade (non-101) is relayed as that HTTP response, no tunnel', async (t) => {
  const refusing = await upstream(t, (_req, res) => { res.writeHead(403, { 'content-type': 'text/plain' }); res.end('go away') })
  const { base } = await app(t, refusing.url)
  const res = await open(`${base}/ws/room`)
  t.equal(res.status, 403)
  t.equal(res.body, 'go away')
})

t.test('an unreachable upstream gives 503 to the upgrade', async (t) => {
  const { base } = await app(t, await closedPort())
  const res = await open(`${base}/ws/room`)
  t.equal(res.status, 503)
  t.notMatch(res.body, /127\.0\.0\.1/)
})

t.test('closing the app closes open tunnels', async (t) => {
  const chat = await wsUpstream(t)
  const { base, fastify } = await app(t, chat.url)
  const { socket } = await open(`${base}/ws/room`)
  const closed = new Promise<void>((resolve) => socket!.on('close', () => { resolve() }))
  await fastify.close()
  await closed
  t.pass('closed')
})
