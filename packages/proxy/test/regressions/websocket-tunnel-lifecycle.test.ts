// Findings of the WebSocket audit: a tunnel made no log line and no metrics; its 101 lacked
// the headers the route's hooks set (x-request-id, RateLimit-*) and relayed the upstream's
// `Connection` tokens; a client giving up mid-handshake kept its `maxConnections` place and
// the upstream request; closing the app cut tunnels without a close frame and waited for a
// pending handshake's upstream timeout; a tunnel outlived the JWT that opened it; a failed
// upgrade logged a warn line and answered `Connection: keep-alive` before closing.
// The real @tollgate/metrics and @tollgate/auth plugins are used: the proxy finds them only
// through the optional `app.tollgateMetrics.recordHijacked` and `request.tollgateIdentity`.
import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import { connect, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { WebSocket, WebSocketServer } from 'ws'
import tollgateMetrics, { genReqId } from '@tollgate/metrics'
import tollgateAuth from '@tollgate/auth'
import tollgateProxy, { type UpstreamOptions } from '../../src/index.js'
import { closedPort, eventually, listen, listenWebSockets, rawUpstream } from '../helpers/servers.js'

type Test = Parameters<typeof rawUpstream>[0]

const SECRET = 'a-websocket-test-secret-long-enough-0123456789'

/** An HS256 token for `claims` (sub `ann`). */
function token (claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const data = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: 'ann', ...claims })}`
  return `${data}.${createHmac('sha256', SECRET).update(data).digest('base64url')}`
}

interface WsUpstream { url: string, closes: Array<{ code: number, reason: string }> }

/** A ws echo server on 127.0.0.1 recording the close code each of its sockets got. */
async function wsUpstream (t: Test): Promise<WsUpstream> {
  const server = createServer((_req, res) => { res.end('plain') })
  const wss = new WebSocketServer({ server })
  const state: WsUpstream = { url: '', closes: [] }
  wss.on('connection', (socket) => {
    socket.on('message', (data, binary) => { socket.send(data, { binary }) })
    socket.on('close', (code, reason) => { state.closes.push({ code, reason: reason.toString() }) })
  })
  state.url = await listenWebSockets(t, server, wss)
  return state
}

/** An upstream that takes upgrade requests and never answers them; `open()` counts its live connections. */
async function silentUpstream (t: Test): Promise<{ url: string, requests: () => number, open: () => number }> {
  const sockets = new Set<Socket>()
  let requests = 0
  const upstream = await rawUpstream(t, (socket) => {
    requests++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  return { url: upstream.url, requests: () => requests, open: () => sockets.size }
}

interface Gateway { app: FastifyInstance, base: string, lines: Array<Record<string, unknown>> }

/** The proxy behind the real metrics plugin (one line per request, collected) and, optionally, auth. */
async function gatewayFor (t: Test, target: string, options: { websocket?: UpstreamOptions['websocket'], timeout?: string, auth?: boolean, hook?: boolean } = {}): Promise<Gateway> {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const app = Fastify({ logger: { level: 'debug', stream }, genReqId, requestIdHeader: false, logController: new LogController({ disableRequestLogging: true }) })
  t.teardown(async () => { await app.close() })
  await app.register(tollgateMetrics)
  if (options.auth === true) await app.register(tollgateAuth, { jwt: { secret: SECRET } })
  if (options.hook === true) {
    // What a rate limiter does on a request it lets through, plus a hop-by-hop header that must not leak.
    await app.register(fp(async (instance) => {
      instance.addHook('onRequest', async (_request, reply) => {
        reply.header('ratelimit-limit', '3').header('ratelimit-remaining', '2').header('ratelimit-reset', '60')
        reply.header('keep-alive', 'timeout=99').header('x-bad', 'a\r\nInjected: yes')
      })
    }, { name: 'limit-headers' }))
  }
  await app.register(tollgateProxy, {
    upstreams: { chat: { targets: [target], timeout: options.timeout ?? '2s', ...(options.websocket === undefined ? {} : { websocket: options.websocket }) } },
    routes: [{ prefix: '/ws', upstream: 'chat', websocket: true, config: { auth: options.auth === true ? { methods: ['jwt'] } : false } }],
    healthChecks: false
  })
  return { app, base: (await listen(app)).replace('http:', 'ws:'), lines }
}

function requestLines (gateway: Gateway): Array<Record<string, unknown>> {
  return gateway.lines.filter((line) => line.msg === 'request completed')
}

async function open (url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return await new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    socket.on('open', () => { resolve(socket) })
    socket.on('unexpected-response', (_req, res) => { reject(new Error(`refused with ${String(res.statusCode)}`)) })
    socket.on('error', reject)
  })
}

/** The close code and reason the socket gets, or `still open` after `within` ms (a bound, so a failure ends the test). */
function closed (socket: WebSocket, within = 10_000): Promise<{ code: number, reason: string } | 'still open'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { resolve('still open') }, within)
    socket.once('close', (code, reason) => {
      clearTimeout(timer)
      resolve({ code, reason: reason.toString() })
    })
  })
}

/** Writes a raw upgrade request; resolves with the head of the answer (and the socket, still open). */
function rawUpgrade (base: string, path: string): Promise<{ head: string, socket: Socket, body: () => string }> {
  const { port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1')
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      received += chunk
      const end = received.indexOf('\r\n\r\n')
      if (end !== -1) resolve({ head: received.slice(0, end), socket, body: () => received.slice(end + 4) })
    })
    socket.on('error', reject)
    socket.on('close', () => { if (!received.includes('\r\n\r\n')) reject(new Error(`closed without an answer: ${received}`)) })
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Request-Id: ws-request-1\r\n\r\n`)
  })
}

function headerLines (head: string, name: string): string[] {
  return head.split('\r\n').filter((line) => line.toLowerCase().startsWith(`${name}:`)).map((line) => line.slice(name.length + 1).trim())
}

t.test('a tunnel makes one request line and its counts when it closes, with status 101 and its lifetime; the upstream\'s 101 is timed', async (t) => {
  const chat = await wsUpstream(t)
  const gateway = await gatewayFor(t, chat.url)
  const opened = performance.now()
  const socket = await open(`${gateway.base}/ws/room`, { 'x-request-id': 'tunnel-1' })
  await new Promise<void>((resolve) => { socket.once('message', () => { resolve() }); socket.send('hi') })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(requestLines(gateway).length, 0, 'nothing is logged while the tunnel is open')
  const done = closed(socket)
  socket.close(1000)
  await done
  t.ok(await eventually(() => requestLines(gateway).length > 0), 'a line once it closed')
  await new Promise((resolve) => setTimeout(resolve, 50))
  const lines = requestLines(gateway)
  t.equal(lines.length, 1, 'exactly one line')
  t.match(lines[0], { reqId: 'tunnel-1', route: '/ws', method: 'GET', statusCode: 101, target: chat.url })
  t.ok((lines[0]!.responseTime as number) >= 200 && (lines[0]!.responseTime as number) <= performance.now() - opened + 50, 'the duration is the tunnel\'s lifetime')
  const scraped = await gateway.app.tollgateMetrics.scrape()
  t.match(scraped, /tollgate_requests_total\{route="\/ws",method="GET",status="101"\} 1\n/)
  t.match(scraped, /tollgate_request_duration_seconds_count\{route="\/ws",method="GET",status="101"\} 1\n/)
  t.match(scraped, new RegExp(`tollgate_upstream_duration_seconds_count\\{upstream="chat",target="${chat.url}",status="101"\\} 1\\n`))
})

t.test('the 101 carries the headers the route\'s hooks set, and only `Connection: Upgrade`', async (t) => {
  const upstream = await rawUpstream(t, (socket, request) => {
    const key = /sec-websocket-key: (.*)\r\n/i.exec(request)![1]!
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Internal\r\nX-Internal: secret\r\n' +
      `Keep-Alive: timeout=5\r\nRateLimit-Limit: 1000\r\nSet-Cookie: up=1\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
  })
  const gateway = await gatewayFor(t, upstream.url, { hook: true })
  const { head, socket } = await rawUpgrade(gateway.base, '/ws/room')
  socket.destroy()
  t.match(head, /^HTTP\/1\.1 101 /)
  t.same(headerLines(head, 'connection'), ['Upgrade'])
  t.same(headerLines(head, 'upgrade'), ['websocket'])
  t.same(headerLines(head, 'x-request-id'), ['ws-request-1'], 'the request id is returned, as on every answer')
  t.same(headerLines(head, 'ratelimit-limit'), ['3'], 'a header set by a hook wins over the upstream\'s')
  t.same(headerLines(head, 'ratelimit-remaining'), ['2'])
  t.same(headerLines(head, 'ratelimit-reset'), ['60'])
  t.same(headerLines(head, 'set-cookie'), ['up=1'])
  t.equal(headerLines(head, 'sec-websocket-accept').length, 1)
  t.same(headerLines(head, 'x-internal'), [], 'a header the upstream listed in Connection is dropped')
  t.same(headerLines(head, 'keep-alive'), [], 'hop-by-hop headers are dropped, the hook\'s too')
  t.notMatch(head, /Injected/i, 'a hook\'s header value with CR LF is left out')
})

t.test('a client that gives up mid-handshake frees its place and the upstream request at once', async (t) => {
  const upstream = await silentUpstream(t)
  const gateway = await gatewayFor(t, upstream.url, { websocket: { maxConnections: 1 }, timeout: '30s' })
  const { port } = new URL(gateway.base)
  const client = connect(Number(port), '127.0.0.1')
  client.on('error', () => {})
  client.write('GET /ws/room HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  t.ok(await eventually(() => upstream.requests() === 1), 'the upstream got the upgrade')
  t.equal(gateway.app.tollgateProxy.upstreams()[0]!.websockets, 1)
  // A half-close (FIN): the gateway's socket accepts half-open connections, so only 'end' comes.
  client.end()
  t.ok(await eventually(() => gateway.app.tollgateProxy.upstreams()[0]!.websockets === 0), 'the maxConnections place is free')
  t.ok(await eventually(() => upstream.open() === 0), 'the upstream request was aborted')
  t.ok(await eventually(() => requestLines(gateway).length === 1))
  t.match(requestLines(gateway)[0], { statusCode: 499, aborted: true }, 'logged as a client that went away')
  client.destroy()
})

t.test('closing the app sends both sides of a tunnel a 1001 close frame', async (t) => {
  const chat = await wsUpstream(t)
  const gateway = await gatewayFor(t, chat.url)
  const socket = await open(`${gateway.base}/ws/room`)
  await new Promise<void>((resolve) => { socket.once('message', () => { resolve() }); socket.send('hi') })
  const done = closed(socket)
  await gateway.app.close()
  t.same(await done, { code: 1001, reason: 'going away' })
  t.ok(await eventually(() => chat.closes.length === 1))
  t.same(chat.closes, [{ code: 1001, reason: 'going away' }])
  t.match(requestLines(gateway), [{ statusCode: 101 }], 'the tunnel still gets its line')
})

t.test('closing the app answers a pending handshake 503 with Retry-After instead of waiting for the upstream', async (t) => {
  const upstream = await silentUpstream(t)
  const gateway = await gatewayFor(t, upstream.url, { timeout: '10s' })
  const answer = rawUpgrade(gateway.base, '/ws/room')
  t.ok(await eventually(() => upstream.requests() === 1), 'the upstream got the upgrade')
  await gateway.app.close()
  const { head, socket, body } = await answer
  t.ok(await eventually(() => body().endsWith('}')), 'the whole body arrived')
  socket.destroy()
  t.match(head, /^HTTP\/1\.1 503 /)
  t.match(JSON.parse(body()), { statusCode: 503, message: 'The gateway is shutting down' }, 'saying why')
  t.same(headerLines(head, 'retry-after'), ['5'])
  t.same(headerLines(head, 'connection'), ['close'])
  t.ok(await eventually(() => upstream.open() === 0), 'the upstream request was aborted')
  t.equal(gateway.app.tollgateProxy.upstreams()[0]!.websockets, 0)
})

t.test('a tunnel opened with a JWT closes at the token\'s exp with 1008 to both sides', async (t) => {
  const chat = await wsUpstream(t)
  const gateway = await gatewayFor(t, chat.url, { auth: true })
  const soon = Math.floor(Date.now() / 1000) + 2
  const socket = await open(`${gateway.base}/ws/room`, { authorization: `Bearer ${token({ exp: soon })}` })
  // A token valid for months (beyond a Node timer's longest delay) is not closed at once.
  const lasting = await open(`${gateway.base}/ws/room`, { authorization: `Bearer ${token({ exp: soon + 90 * 86_400 })}` })
  let lastingClosed = false
  lasting.on('close', () => { lastingClosed = true })
  t.same(await closed(socket), { code: 1008, reason: 'credentials expired' })
  t.ok(Date.now() >= (soon - 1) * 1000, 'not before the token expired')
  t.ok(await eventually(() => chat.closes.length === 1))
  t.same(chat.closes, [{ code: 1008, reason: 'credentials expired' }])
  t.equal(lastingClosed, false, 'the long-lived token\'s tunnel is still open')
  const echoed = await new Promise<string>((resolve) => { lasting.once('message', (data) => { resolve(data.toString()) }); lasting.send('still here') })
  t.equal(echoed, 'still here')
  lasting.close()
})

t.test('a failed upgrade logs only its request line and says `Connection: close`', async (t) => {
  const gateway = await gatewayFor(t, await closedPort())
  const { head, socket } = await rawUpgrade(gateway.base, '/ws/room')
  socket.destroy()
  t.match(head, /^HTTP\/1\.1 503 /)
  t.same(headerLines(head, 'connection'), ['close'])
  t.ok(await eventually(() => requestLines(gateway).length === 1))
  t.same(gateway.lines.filter((line) => (line.level as number) >= 40), [], 'no warn line')
  t.match(gateway.lines.find((line) => line.msg === 'websocket upgrade to upstream failed'), { level: 20 }, 'the attempt is at debug')
})
