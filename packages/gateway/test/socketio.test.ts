// A real Socket.io 4 chat server behind createGateway, on a JWT-protected
// `websocket: true` route verified against a real JWKS server: the gateway, not the
// client, decides who the chat server sees.
import t, { type Test } from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server as SocketIoServer } from 'socket.io'
import { io, type Socket as ClientSocket } from 'socket.io-client'
import { WebSocket } from 'ws'
import { createGateway, manifestProblems, type Manifest } from '../src/index.js'
import { jwksServer, sign, signingKey } from './helpers/keys.js'
import { waitFor } from './helpers/upstream.js'

const key = signingKey('RS256')

interface Chat { url: string, handshakes: IncomingHttpHeaders[], said: string[], disconnects: string[] }

/** The chat backend: trusts x-user-id, relays `say` to the room as `said`. */
async function chatServer (t: Test): Promise<Chat> {
  const server = createServer()
  const socketio = new SocketIoServer(server, { transports: ['websocket'], maxHttpBufferSize: 10 * 1024 * 1024 })
  const chat: Chat = { url: '', handshakes: [], said: [], disconnects: [] }
  socketio.on('connection', (socket) => {
    chat.handshakes.push(socket.handshake.headers)
    const user = String(socket.handshake.headers['x-user-id'])
    socket.on('join', (room: string, ack: (ok: boolean) => void) => {
      void socket.join(room)
      ack(true)
    })
    socket.on('say', ({ room, text }: { room: string, text: string }) => {
      chat.said.push(text)
      socket.to(room).emit('said', { user, text })
    })
    socket.on('disconnect', (reason) => { chat.disconnects.push(reason) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    await socketio.close()
    server.closeAllConnections()
  })
  chat.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return chat
}

async function start (t: Test, chat: Chat): Promise<string> {
  const jwks = await jwksServer([key])
  t.teardown(jwks.close)
  const manifest: Manifest = {
    version: 1,
    auth: {
      jwt: { jwksUrl: jwks.url, issuer: 'example-auth', audience: 'example-api', algorithms: ['RS256'] },
      identityHeaders: { 'x-user-id': 'sub' }
    },
    upstreams: { chat: { targets: [chat.url], websocket: { maxMessageSize: '64kb', maxConnections: 3, idleTimeout: '1m' } } },
    routes: [{ prefix: '/socket.io', upstream: 'chat', rewritePrefix: '/socket.io', websocket: true, auth: { methods: ['jwt'] } }]
  }
  const app = await createGateway(manifest, { logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

async function connect (t: Test, base: string, headers: Record<string, string>): Promise<ClientSocket> {
  const socket = io(base, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000, extraHeaders: headers })
  t.teardown(() => { socket.disconnect() })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('connect_error', reject)
  })
  return socket
}

t.test('authenticated socket.io clients chat through the gateway; the server sees the gateway-set identity only', async (t) => {
  const chat = await chatServer(t)
  const base = await start(t, chat)
  const alice = await connect(t, base, { authorization: `Bearer ${sign(key, { sub: 'alice' })}`, 'x-user-id': 'admin' })
  const bob = await connect(t, base, { authorization: `Bearer ${sign(key, { sub: 'bob' })}`, x_user_id: 'admin' })
  t.same(chat.handshakes.map((headers) => headers['x-user-id']), ['alice', 'bob'], 'the spoofed x-user-id is replaced by the token subject')
  t.equal(chat.handshakes.some((headers) => 'x_user_id' in headers), false, 'an underscore alias of the identity header never arrives')
  for (const socket of [alice, bob]) t.equal(await socket.emitWithAck('join', 'meeting-1'), true)

  const toBob = new Promise<unknown>((resolve) => bob.once('said', resolve))
  alice.emit('say', { room: 'meeting-1', text: 'hello bob' })
  t.same(await toBob, { user: 'alice', text: 'hello bob' })
  const toAlice = new Promise<unknown>((resolve) => alice.once('said', resolve))
  bob.emit('say', { room: 'meeting-1', text: 'hi alice' })
  t.same(await toAlice, { user: 'bob', text: 'hi alice' })

  const dropped = new Promise<string>((resolve) => bob.once('disconnect', resolve))
  alice.disconnect()
  await waitFor(() => chat.disconnects.length === 1)
  t.same(chat.disconnects, ['client namespace disconnect'])
  t.equal(bob.connected, true, 'the other tunnel is untouched')
  bob.disconnect()
  t.equal(await dropped, 'io client disconnect')
})

t.test('an unauthenticated or badly authenticated upgrade gets a plain 401 and no tunnel', async (t) => {
  const chat = await chatServer(t)
  const base = await start(t, chat)
  const url = `${base.replace('http:', 'ws:')}/socket.io/?EIO=4&transport=websocket`
  for (const headers of [{}, { 'x-user-id': 'alice' }, { authorization: 'Bearer not.a.token' }, { authorization: `Bearer ${sign(signingKey('RS256'))}` }]) {
    const answer = await new Promise<{ status: number, challenge: unknown, body: string }>((resolve, reject) => {
      const socket = new WebSocket(url, { headers })
      socket.on('open', () => { socket.terminate(); reject(new Error('a tunnel opened')) })
      socket.on('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (chunk: Buffer) => { body += chunk.toString() })
        res.on('end', () => { resolve({ status: res.statusCode!, challenge: res.headers['www-authenticate'], body }) })
      })
      socket.on('error', reject)
    })
    t.equal(answer.status, 401, JSON.stringify(Object.keys(headers)))
    t.match(answer.challenge, /^Bearer realm="tollgate"/)
    t.match(JSON.parse(answer.body), { statusCode: 401, error: 'Unauthorized' })
  }
  // socket.io-client sees a failed connection, not a session.
  const socket = io(base, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 })
  t.teardown(() => { socket.disconnect() })
  const error = await new Promise<Error>((resolve) => socket.once('connect_error', resolve))
  t.ok(error instanceof Error)
  t.equal(chat.handshakes.length, 0, 'the chat server never saw a connection')
})

t.test('the manifest\'s websocket limits reach the proxy: a message over maxMessageSize closes the tunnel, a 4th tunnel gets 503', async (t) => {
  const chat = await chatServer(t)
  const base = await start(t, chat)
  const authorization = `Bearer ${sign(key, { sub: 'carol' })}`
  const carol = await connect(t, base, { authorization })
  await carol.emitWithAck('join', 'meeting-1')
  const dropped = new Promise<string>((resolve) => carol.once('disconnect', resolve))
  carol.emit('say', { room: 'meeting-1', text: 'x'.repeat(65 * 1024) })
  t.equal(await dropped, 'transport close')
  t.same(chat.said, [], 'the oversized message never reached the chat server')

  const open: ClientSocket[] = []
  for (let i = 0; i < 3; i++) open.push(await connect(t, base, { authorization }))
  const refused = await new Promise<{ status: number, retryAfter: unknown }>((resolve, reject) => {
    const socket = new WebSocket(`${base.replace('http:', 'ws:')}/socket.io/?EIO=4&transport=websocket`, { headers: { authorization } })
    socket.on('open', () => { socket.terminate(); reject(new Error('a 4th tunnel opened')) })
    socket.on('unexpected-response', (_req, res) => { res.resume(); resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] }) })
    socket.on('error', reject)
  })
  t.same(refused, { status: 503, retryAfter: '5' })
})

t.test('websocket limits are checked by the manifest schema', async (t) => {
  const manifest = {
    version: 1,
    upstreams: { chat: { targets: ['http://127.0.0.1:4000'], websocket: { maxMessageSize: 'big', maxConections: 3 } } },
    routes: [{ prefix: '/socket.io', upstream: 'chat', websocket: true, auth: false }]
  }
  const problems = manifestProblems(manifest)
  t.ok(problems.some((problem) => problem.startsWith('upstreams.chat.websocket.maxConections: unknown key')), problems.join('\n'))
  t.ok(problems.some((problem) => problem.startsWith('upstreams.chat.websocket.maxMessageSize:')), problems.join('\n'))
})
