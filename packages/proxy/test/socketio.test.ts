// A real Socket.io 4 server behind @tollgate/proxy, and socket.io-client over the
// websocket transport: the reference deployment's chat backend, minus the gateway.
import t from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Server as SocketIoServer, type Socket as ServerSocket } from 'socket.io'
import { io, type Socket as ClientSocket } from 'socket.io-client'
import tollgateProxy from '../src/index.js'
import { eventually, listen } from './helpers/servers.js'

type Test = { teardown: (fn: () => unknown) => void }

interface Chat {
  url: string
  io: SocketIoServer
  /** Handshake of every connection, in order. */
  handshakes: Array<{ url: string, headers: IncomingHttpHeaders }>
  /** Disconnect reasons seen by the server, in order. */
  disconnects: string[]
  sockets: ServerSocket[]
}

/** Socket.io on a node:http server at 127.0.0.1, serving under /chat/socket.io. */
async function chatServer (t: Test): Promise<Chat> {
  const server = createServer()
  const chat: Chat = { url: '', io: new SocketIoServer(server, { path: '/chat/socket.io', transports: ['websocket'] }), handshakes: [], disconnects: [], sockets: [] }
  chat.io.on('connection', (socket) => {
    chat.sockets.push(socket)
    chat.handshakes.push({ url: socket.request.url!, headers: socket.handshake.headers })
    socket.on('join', (room: string, ack: (ok: boolean) => void) => {
      void socket.join(room)
      ack(true)
    })
    socket.on('say', ({ room, text }: { room: string, text: string }) => {
      socket.to(room).emit('said', { from: socket.id, text })
    })
    socket.on('disconnect', (reason) => { chat.disconnects.push(reason) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    await chat.io.close()
    server.closeAllConnections()
  })
  chat.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return chat
}

async function gatewayFor (t: Test, target: string): Promise<{ base: string, app: ReturnType<typeof Fastify> }> {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tollgateProxy, {
    upstreams: { chat: { targets: [target], timeout: '2s' } },
    routes: [{ prefix: '/socket.io', upstream: 'chat', rewritePrefix: '/chat/socket.io', websocket: true }],
    healthChecks: false
  })
  return { base: await listen(app), app }
}

/** A socket.io-client over the websocket transport only; resolves once connected. */
async function connect (t: Test, base: string): Promise<ClientSocket> {
  const socket = io(base, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 })
  t.teardown(() => { socket.disconnect() })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('connect_error', reject)
  })
  return socket
}

t.test('two socket.io clients exchange messages in a room through the proxy', async (t) => {
  const chat = await chatServer(t)
  const { base } = await gatewayFor(t, chat.url)
  const alice = await connect(t, base)
  const bob = await connect(t, base)
  t.equal(chat.handshakes.length, 2)
  t.match(chat.handshakes[0]!.url, /^\/chat\/socket\.io\/\?EIO=4&transport=websocket/, 'the prefix is rewritten, the query kept')
  t.equal(chat.handshakes[0]!.headers['x-forwarded-for'], '127.0.0.1')
  for (const socket of [alice, bob]) t.equal(await socket.emitWithAck('join', 'meeting-1'), true)

  const toBob = new Promise<{ from: string, text: string }>((resolve) => bob.once('said', resolve))
  alice.emit('say', { room: 'meeting-1', text: 'hello bob' })
  t.same(await toBob, { from: alice.id, text: 'hello bob' })
  const toAlice = new Promise<{ from: string, text: string }>((resolve) => alice.once('said', resolve))
  bob.emit('say', { room: 'meeting-1', text: 'hi alice' })
  t.same(await toAlice, { from: bob.id, text: 'hi alice' })
})

t.test('disconnects propagate both ways, and closing the gateway closes the clients', async (t) => {
  const chat = await chatServer(t)
  const { base, app } = await gatewayFor(t, chat.url)
  const alice = await connect(t, base)
  alice.disconnect()
  t.ok(await eventually(() => chat.disconnects.length === 1))
  t.same(chat.disconnects, ['client namespace disconnect'], 'the server sees the client leave')

  const bob = await connect(t, base)
  const kicked = new Promise<string>((resolve) => bob.once('disconnect', resolve))
  chat.sockets.at(-1)!.disconnect(true)
  t.equal(await kicked, 'io server disconnect', 'the client sees the server end its session')

  const carol = await connect(t, base)
  const dropped = new Promise<string>((resolve) => carol.once('disconnect', resolve))
  await app.close()
  t.equal(await dropped, 'transport close')
  t.ok(await eventually(() => chat.disconnects.length === 3))
  t.equal(chat.disconnects[2], 'transport close', 'and the server sees the tunnel go')
})
