import t from 'tap'
import { createServer } from 'node:http'
import Fastify from 'fastify'
import { WebSocket, WebSocketServer, type WebSocket as ServerSocket } from 'ws'
import tollgateProxy, { resolveOptions, type UpstreamOptions } from '../src/index.js'
import { FrameScanner, closeFrame } from '../src/websocket-frames.js'
import { messageBucket } from '../src/websocket-rate.js'
import { eventually, listen, listenWebSockets, upstream as httpUpstream } from './helpers/servers.js'

type Test = Parameters<typeof httpUpstream>[0]

interface WsUpstream {
  url: string
  /** Sizes of the messages the upstream received, in order. */
  received: number[]
  /** Close code of each upstream-side socket, in order of closing. */
  closes: number[]
  sockets: ServerSocket[]
  upgrades: () => number
}

/** A ws echo server on 127.0.0.1 (no message size limit of its own), recording what it gets. */
async function wsUpstream (t: Test): Promise<WsUpstream> {
  const server = createServer((_req, res) => { res.end('plain') })
  const wss = new WebSocketServer({ server, maxPayload: 64 * 1024 * 1024 })
  const state: WsUpstream = { url: '', received: [], closes: [], sockets: [], upgrades: () => state.sockets.length }
  wss.on('connection', (socket) => {
    state.sockets.push(socket)
    socket.on('message', (data: Buffer, binary) => {
      state.received.push(data.length)
      socket.send(data, { binary })
    })
    socket.on('close', (code) => { state.closes.push(code) })
  })
  state.url = await listenWebSockets(t, server, wss)
  return state
}

async function gatewayFor (t: Test, target: string, websocket: UpstreamOptions['websocket'], now?: () => number): Promise<{ base: string, app: ReturnType<typeof Fastify> }> {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tollgateProxy, {
    upstreams: { chat: { targets: [target], timeout: '2s', ...(websocket === undefined ? {} : { websocket }) } },
    routes: [{ prefix: '/ws', upstream: 'chat', websocket: true }],
    healthChecks: false,
    ...(now === undefined ? {} : { now })
  })
  return { base: (await listen(app)).replace('http:', 'ws:'), app }
}

/** Opens a client (no permessage-deflate, so sizes on the wire are the message sizes). */
async function open (t: Test, url: string): Promise<{ socket?: WebSocket, status?: number, headers?: Record<string, unknown>, body?: string }> {
  return await new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false })
    socket.on('open', () => {
      t.teardown(() => { socket.terminate() })
      resolve({ socket })
    })
    socket.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode!, headers: res.headers, body }) })
    })
    socket.on('error', reject)
  })
}

function closed (socket: WebSocket): Promise<{ code: number, reason: string }> {
  return new Promise((resolve) => socket.once('close', (code, reason) => { resolve({ code, reason: reason.toString() }) }))
}

async function echo (socket: WebSocket, payload: Buffer): Promise<number> {
  return await new Promise((resolve) => {
    socket.once('message', (data: Buffer) => { resolve(data.length) })
    socket.send(payload)
  })
}

function frame (opcode: number, fin: boolean, payloadLength: number, masked = true): Buffer {
  const length = payloadLength < 126 ? [payloadLength] : payloadLength < 65_536 ? [126, payloadLength >> 8, payloadLength & 255] : [127, 0, 0, 0, 0, (payloadLength >>> 24) & 255, (payloadLength >> 16) & 255, (payloadLength >> 8) & 255, payloadLength & 255]
  const header = Buffer.from([(fin ? 0x80 : 0) | opcode, (masked ? 0x80 : 0) | length[0]!, ...length.slice(1), ...(masked ? [1, 2, 3, 4] : [])])
  return Buffer.concat([header, Buffer.alloc(payloadLength, 0x61)])
}

t.test('FrameScanner: whole frames pass, split headers are held back, big frames and messages are caught', async (t) => {
  const scanner = new FrameScanner(1000)
  const stream = Buffer.concat([frame(1, true, 10), frame(2, true, 1000), frame(9, true, 4)])
  // Byte by byte: every byte comes out exactly once, in order.
  const out: Buffer[] = []
  for (let i = 0; i < stream.length; i++) out.push(scanner.scan(stream.subarray(i, i + 1)))
  t.same(Buffer.concat(out), stream)
  t.equal(scanner.atBoundary, true)
  t.equal(scanner.tooBig, false)

  // A frame of limit + 1 bytes: nothing of it passes, even when its header arrives split.
  const big = new FrameScanner(1000)
  const head = frame(1, true, 5)
  const over = frame(2, true, 1001)
  t.same(big.scan(Buffer.concat([head, over.subarray(0, 2)])), head, 'the split header is held back')
  t.equal(big.atBoundary, true)
  t.equal(big.scan(over.subarray(2)).length, 0)
  t.equal(big.tooBig, true)

  // Fragments of 600 + 600 bytes: each is under the limit, the message is not.
  const fragments = new FrameScanner(1000)
  const first = frame(2, false, 600)
  const ping = frame(9, true, 3)
  t.same(fragments.scan(Buffer.concat([first, ping, frame(0, true, 600)])), Buffer.concat([first, ping]), 'control frames between fragments do not count')
  t.equal(fragments.tooBig, true)

  // A 64-bit length far beyond the limit.
  const huge = new FrameScanner(1000)
  t.equal(huge.scan(frame(2, true, 70_000).subarray(0, 14)).length, 0)
  t.equal(huge.tooBig, true)

  // Observing (no limit): follows frame boundaries across chunks.
  const observer = new FrameScanner(0)
  const long = frame(2, true, 300, false)
  observer.scan(long.subarray(0, 100))
  t.equal(observer.atBoundary, false, 'inside a payload')
  observer.scan(long.subarray(100))
  t.equal(observer.atBoundary, true)
  observer.scan(long.subarray(0, 1))
  t.equal(observer.atBoundary, false, 'inside a header')

  t.same(closeFrame(1009, 'x', false), Buffer.from([0x88, 3, 0x03, 0xf1, 0x78]))
  const masked = closeFrame(1001, '', true)
  t.equal(masked[1], 0x82)
  t.same([masked[6]! ^ masked[2]!, masked[7]! ^ masked[3]!], [0x03, 0xe9], 'masked payload decodes to 1001')
})

t.test('maxMessageSize: a message of exactly the limit passes; one byte more closes with 1009 and never reaches the upstream', async (t) => {
  const chat = await wsUpstream(t)
  const { base } = await gatewayFor(t, chat.url, { maxMessageSize: '4kb' })
  const { socket } = await open(t, `${base}/ws`)
  t.equal(await echo(socket!, Buffer.alloc(4096, 1)), 4096, 'inclusive limit')
  const close = closed(socket!)
  socket!.send(Buffer.alloc(4097, 1))
  t.same(await close, { code: 1009, reason: 'message too big' })
  t.ok(await eventually(() => chat.closes.length === 1), 'the upstream side is closed too')
  t.same(chat.closes, [1001], 'the upstream is told its client went away')
  t.same(chat.received, [4096], 'the upstream never saw the big message')
})

t.test('maxMessageSize counts every fragment of a message', async (t) => {
  const chat = await wsUpstream(t)
  const { base } = await gatewayFor(t, chat.url, { maxMessageSize: 1000 })
  const { socket } = await open(t, `${base}/ws`)
  const close = closed(socket!)
  socket!.send(Buffer.alloc(600), { fin: false })
  socket!.send(Buffer.alloc(600), { fin: true })
  t.equal((await close).code, 1009)
  t.ok(await eventually(() => chat.closes.length === 1))
  t.same(chat.received, [], 'no message reached the upstream')
})

t.test('the default maxMessageSize is 1 MiB', async (t) => {
  const resolved = resolveOptions({ upstreams: { chat: { targets: ['http://127.0.0.1:1'] } }, routes: [] })
  t.same(resolved.upstreams.get('chat')!.websocket, { idleTimeout: 300_000, maxMessageSize: 1_048_576, maxMessagesPerSecond: 1000, maxConnections: 10_000 })
  const chat = await wsUpstream(t)
  const { base } = await gatewayFor(t, chat.url, undefined)
  const { socket } = await open(t, `${base}/ws`)
  t.equal(await echo(socket!, Buffer.alloc(1_048_576)), 1_048_576)
  const close = closed(socket!)
  socket!.send(Buffer.alloc(1_048_577))
  t.equal((await close).code, 1009)
})

t.test('idleTimeout: traffic either way keeps a tunnel open; silence closes both sides with 1001', async (t) => {
  const chat = await wsUpstream(t)
  const { base, app } = await gatewayFor(t, chat.url, { idleTimeout: '1s' })
  const { socket } = await open(t, `${base}/ws`)
  let gone = false
  const close = closed(socket!).then((result) => { gone = true; return result })
  // 10 client messages 100 ms apart, then 10 upstream messages 100 ms apart: 2 s in all, never 1 s silent.
  for (let i = 0; i < 10; i++) {
    t.equal(await echo(socket!, Buffer.from('ping')), 4)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  for (let i = 0; i < 10; i++) {
    const got = new Promise((resolve) => socket!.once('message', resolve))
    chat.sockets[0]!.send('tick')
    await got
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(gone, false, 'still open while there is traffic')
  t.same(await close, { code: 1001, reason: 'idle timeout' })
  t.ok(await eventually(() => chat.closes.length === 1))
  t.same(chat.closes, [1001])
  t.ok(await eventually(() => app.tollgateProxy.upstreams()[0]!.websockets === 0), 'the tunnel is released')
})

t.test('close codes pass through both ways', async (t) => {
  const chat = await wsUpstream(t)
  const { base } = await gatewayFor(t, chat.url, undefined)
  const { socket } = await open(t, `${base}/ws`)
  await echo(socket!, Buffer.from('hi'))
  const close = closed(socket!)
  chat.sockets[0]!.close(4002, 'server says bye')
  t.same(await close, { code: 4002, reason: 'server says bye' })
})

t.test('maxConnections: one more upgrade gets 503 with Retry-After before the upstream is contacted; a closed tunnel frees its place', async (t) => {
  const chat = await wsUpstream(t)
  const { base, app } = await gatewayFor(t, chat.url, { maxConnections: 2 })
  const first = await open(t, `${base}/ws`)
  const second = await open(t, `${base}/ws`)
  t.ok(first.socket !== undefined && second.socket !== undefined)
  t.equal(app.tollgateProxy.upstreams()[0]!.websockets, 2)
  const third = await open(t, `${base}/ws`)
  t.equal(third.status, 503)
  t.equal(third.headers!['retry-after'], '5')
  t.match(JSON.parse(third.body!), { statusCode: 503, code: 'TOLLGATE_PROXY_WEBSOCKET_LIMIT' })
  t.equal(chat.upgrades(), 2, 'the refused upgrade never reached the upstream')
  first.socket!.close(1000)
  t.ok(await eventually(() => app.tollgateProxy.upstreams()[0]!.websockets === 1))
  const again = await open(t, `${base}/ws`)
  t.ok(again.socket, 'a place freed by a closed tunnel is reused')
  t.equal(chat.upgrades(), 3)
})

t.test('upgrades that open no tunnel do not hold a place', async (t) => {
  const refusing = await httpUpstream(t, (_req, res) => { res.writeHead(403); res.end('no') })
  const { base, app } = await gatewayFor(t, refusing.url, { maxConnections: 1 })
  for (let i = 0; i < 3; i++) t.equal((await open(t, `${base}/ws`)).status, 403)
  t.ok(await eventually(() => app.tollgateProxy.upstreams()[0]!.websockets === 0))
})

t.test('websocket options are validated with their path', async (t) => {
  const base = { targets: ['http://127.0.0.1:1'] }
  const cases: Array<[unknown, RegExp]> = [
    [{ maxMessageSize: 'huge' }, /^upstreams\.chat\.websocket\.maxMessageSize: invalid size/],
    [{ maxMessageSize: 0 }, /^upstreams\.chat\.websocket\.maxMessageSize: must be at least 1 bytes/],
    [{ idleTimeout: 'soon' }, /^upstreams\.chat\.websocket\.idleTimeout: invalid duration/],
    [{ maxConnections: 0 }, /^upstreams\.chat\.websocket\.maxConnections: must be an integer >= 1/],
    [{ maxMessagesPerSecond: -1 }, /^upstreams\.chat\.websocket\.maxMessagesPerSecond: must be an integer >= 0/],
    [{ maxMessagesPerSecond: 2.5 }, /^upstreams\.chat\.websocket\.maxMessagesPerSecond: must be an integer >= 0/],
    [{ maxFrames: 1 }, /^upstreams\.chat\.websocket\.maxFrames: unknown key/],
    [true, /^upstreams\.chat\.websocket: must be an object/]
  ]
  for (const [websocket, message] of cases) {
    t.throws(() => resolveOptions({ upstreams: { chat: { ...base, websocket } }, routes: [] }), { message }, JSON.stringify(websocket))
  }
  t.same(resolveOptions({ upstreams: { chat: { ...base, websocket: { idleTimeout: 0, maxMessageSize: '64kb', maxMessagesPerSecond: 0, maxConnections: 3 } } }, routes: [] }).upstreams.get('chat')!.websocket,
    { idleTimeout: 0, maxMessageSize: 65_536, maxMessagesPerSecond: 0, maxConnections: 3 })
})

t.test('messageBucket: a burst of rate messages, then one per 1000 / rate ms; a clock stepping back adds nothing', async (t) => {
  let clock = 10_000
  const admit = messageBucket(4, () => clock)
  t.same([admit(), admit(), admit(), admit(), admit()], [true, true, true, true, false], 'a full bucket holds rate tokens')
  clock += 249
  t.equal(admit(), false, 'not a whole token yet')
  clock += 1
  t.equal(admit(), true, 'one token every 250 ms')
  t.equal(admit(), false)
  clock += 60_000
  t.same([admit(), admit(), admit(), admit(), admit()], [true, true, true, true, false], 'a long pause refills to rate, not beyond')
  clock -= 5_000
  t.equal(admit(), false, 'going back in time refills nothing')
})

t.test('FrameScanner with admit: asked once per message, never for continuations or control frames; a refusal cuts before the message', async (t) => {
  let asked = 0
  const scanner = new FrameScanner(1000, () => ++asked <= 2)
  const fragmented = Buffer.concat([frame(1, false, 3), frame(9, true, 2), frame(0, false, 3), frame(0, true, 3)])
  const whole = frame(2, true, 5)
  t.same(scanner.scan(Buffer.concat([fragmented, whole])), Buffer.concat([fragmented, whole]), 'two messages, one of them in three fragments')
  t.equal(asked, 2)
  t.equal(scanner.tooMany, false)
  const third = frame(1, true, 4)
  // The third message's header arrives split: its first byte is held back, then nothing of it passes.
  t.equal(scanner.scan(Buffer.concat([frame(10, true, 1), third.subarray(0, 1)])).length, frame(10, true, 1).length, 'a pong passes without being counted')
  t.equal(asked, 2)
  t.equal(scanner.atBoundary, true, 'the held-back header byte was not forwarded')
  t.equal(scanner.scan(third.subarray(1)).length, 0)
  t.equal(asked, 3)
  t.equal(scanner.tooMany, true)
  t.equal(scanner.scan(frame(1, true, 1)).length, 0, 'nothing passes after a refusal')
})

t.test('maxMessagesPerSecond: a burst past the limit closes the client with 1008 and the upstream with 1001; the upstream gets exactly the limit', async (t) => {
  const chat = await wsUpstream(t)
  const clock = 1_000_000
  const { base, app } = await gatewayFor(t, chat.url, { maxMessagesPerSecond: 5 }, () => clock)
  const { socket } = await open(t, `${base}/ws`)
  const close = closed(socket!)
  for (let i = 0; i < 8; i++) socket!.send(Buffer.from(`m${i}`))
  t.same(await close, { code: 1008, reason: 'too many messages' })
  t.ok(await eventually(() => chat.closes.length === 1), 'the upstream side is closed too')
  t.same(chat.closes, [1001], 'the upstream is told its client went away')
  t.same(chat.received, [2, 2, 2, 2, 2], 'the frozen clock refilled nothing: 5 messages, whole')
  t.ok(await eventually(() => app.tollgateProxy.upstreams()[0]!.websockets === 0), 'the tunnel is released')
})

t.test('maxMessagesPerSecond refills with the clock and counts a fragmented message once', async (t) => {
  const chat = await wsUpstream(t)
  let clock = 1_000_000
  const { base } = await gatewayFor(t, chat.url, { maxMessagesPerSecond: 3 }, () => clock)
  const { socket } = await open(t, `${base}/ws`)
  // Three messages of four fragments each: 12 frames, 3 messages.
  for (let i = 0; i < 3; i++) {
    const got = new Promise<Buffer>((resolve) => socket!.once('message', resolve))
    for (let f = 0; f < 4; f++) socket!.send(Buffer.from('ab'), { fin: f === 3 })
    t.equal((await got).length, 8)
  }
  clock += 1000
  for (let i = 0; i < 3; i++) t.equal(await echo(socket!, Buffer.from('again')), 5, 'a second later the bucket is full again')
  const close = closed(socket!)
  socket!.send('one too many')
  t.equal((await close).code, 1008)
  t.same(chat.received, [8, 8, 8, 5, 5, 5])
})

t.test('maxMessagesPerSecond: 0 turns the limit off', async (t) => {
  const chat = await wsUpstream(t)
  const { base } = await gatewayFor(t, chat.url, { maxMessagesPerSecond: 0 }, () => 0)
  const { socket } = await open(t, `${base}/ws`)
  const echoes = new Promise<void>((resolve) => {
    let count = 0
    socket!.on('message', () => { if (++count === 1500) resolve() })
  })
  // More than the default 1000 in one burst, on a clock that never moves.
  for (let i = 0; i < 1500; i++) socket!.send('x')
  await echoes
  t.equal(chat.received.length, 1500)
  t.equal(chat.closes.length, 0)
})
