import { request as httpRequest } from 'node:http'
import type { Test } from 'tap'
import t from 'tap'
import { io as connect, type Socket } from 'socket.io-client'
import { buildChatApp } from '../src/app.js'
import { SOCKET_PATH } from '../src/realtime.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- payloads are read loosely in tests
type Loose = any

async function start (t: Test): Promise<string> {
  const app = await buildChatApp()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

async function call (base: string, path: string, init: { method?: string, body?: unknown, as?: string } = {}): Promise<{ status: number, body: Loose }> {
  const headers: Record<string, string> = {}
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.as !== undefined) headers['x-user-id'] = init.as
  const response = await fetch(base + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) }
}

/** A websocket-only client; connected (or refused) before it is returned. */
function client (t: Test, base: string, userId?: string): Socket {
  const socket = connect(base, {
    path: SOCKET_PATH,
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 5000,
    extraHeaders: userId === undefined ? {} : { 'x-user-id': userId }
  })
  t.teardown(() => { socket.disconnect() })
  return socket
}

/** The next `event` whose payload satisfies `accept`, or a rejection after 5 s (a bound, not a timing assertion). */
function next (socket: Socket, event: string, accept: (payload: Loose) => boolean = () => true): Promise<Loose> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener)
      reject(new Error(`no ${event} event`))
    }, 5000)
    const listener = (payload: Loose): void => {
      if (!accept(payload)) return
      clearTimeout(timer)
      socket.off(event, listener)
      resolve(payload)
    }
    socket.on(event, listener)
  })
}

async function connected (socket: Socket): Promise<void> {
  if (socket.connected) return
  await Promise.race([next(socket, 'connect'), next(socket, 'connect_error').then((error: Error) => { throw error })])
}

function emit (socket: Socket, event: string, payload: unknown): Promise<Loose> {
  return socket.timeout(5000).emitWithAck(event, payload)
}

t.test('meetings CRUD takes the owner from x-user-id', async (t) => {
  const base = await start(t)
  t.equal((await call(base, '/api/meetings', { body: { title: 'standup' } })).status, 401)
  t.equal((await call(base, '/api/meetings', { body: { title: 'standup', maxParticipants: 1 }, as: 'alice' })).status, 400)
  const created = await call(base, '/api/meetings', { body: { title: 'standup' }, as: 'alice' })
  t.equal(created.status, 201)
  t.match(created.body, { title: 'standup', ownerId: 'alice', maxParticipants: 10, participants: [] })
  const path = `/api/meetings/${created.body.id as string}`
  t.equal((await call(base, '/api/meetings')).body.length, 1)
  t.equal((await call(base, path, { method: 'PATCH', body: { title: 'mine now' }, as: 'bob' })).status, 403)
  t.equal((await call(base, path, { method: 'PATCH', body: { title: 'daily', maxParticipants: 3 }, as: 'alice' })).body.maxParticipants, 3)
  t.equal((await call(base, path, { method: 'DELETE', as: 'bob' })).status, 403)
  t.equal((await call(base, path, { method: 'DELETE', as: 'alice' })).status, 204)
  t.equal((await call(base, path)).status, 404)
  t.same((await call(base, '/health')).body, { status: 'ok', sockets: 0 })
})

t.test('two participants join a meeting and exchange messages, which are not persisted', async (t) => {
  const base = await start(t)
  const { body: meeting } = await call(base, '/api/meetings', { body: { title: 'pair' }, as: 'alice' })
  const alice = client(t, base, 'alice')
  const bob = client(t, base, 'bob')
  await Promise.all([connected(alice), connected(bob)])

  t.match(await emit(alice, 'meeting:join', meeting.id), { ok: true, participants: ['alice'] })
  const aliceSeesBob = next(alice, 'meeting:joined')
  const aliceSeesBoth = next(alice, 'meeting:participants', (p) => p.participants.length === 2)
  t.match(await emit(bob, 'meeting:join', meeting.id), { ok: true, participants: ['alice', 'bob'] })
  t.same(await aliceSeesBob, { meetingId: meeting.id, userId: 'bob' })
  t.same(await aliceSeesBoth, { meetingId: meeting.id, participants: ['alice', 'bob'] })
  t.same((await call(base, `/api/meetings/${meeting.id as string}`)).body.participants, ['alice', 'bob'])

  const bobGets = next(bob, 'chat:message')
  const aliceEcho = next(alice, 'chat:message')
  const ack = await emit(alice, 'chat:message', { meetingId: meeting.id, text: 'hello bob' })
  t.match(ack, { ok: true })
  const received = await bobGets
  t.match(received, { meetingId: meeting.id, from: 'alice', text: 'hello bob', id: ack.id })
  t.same(await aliceEcho, received, 'the sender receives the broadcast too')

  const aliceGets = next(alice, 'chat:message')
  await emit(bob, 'chat:message', { meetingId: meeting.id, text: 'hi alice' })
  t.match(await aliceGets, { from: 'bob', text: 'hi alice' })
  t.notOk('messages' in (await call(base, `/api/meetings/${meeting.id as string}`)).body, 'no history is kept')

  const aliceSeesLeave = next(alice, 'meeting:left')
  const aliceSeesOne = next(alice, 'meeting:participants', (p) => p.participants.length === 1)
  t.match(await emit(bob, 'meeting:leave', meeting.id), { ok: true })
  t.same(await aliceSeesLeave, { meetingId: meeting.id, userId: 'bob' })
  t.same((await aliceSeesOne).participants, ['alice'])
  t.match(await emit(bob, 'chat:message', { meetingId: meeting.id, text: 'still here?' }), { ok: false, code: 'NOT_IN_MEETING' })
})

t.test('the participant cap is enforced with an error event; a second tab of a member still fits', async (t) => {
  const base = await start(t)
  const { body: meeting } = await call(base, '/api/meetings', { body: { title: 'small', maxParticipants: 2 }, as: 'alice' })
  const alice = client(t, base, 'alice')
  const bob = client(t, base, 'bob')
  const carol = client(t, base, 'carol')
  const aliceTab = client(t, base, 'alice')
  await Promise.all([alice, bob, carol, aliceTab].map(connected))
  t.match(await emit(alice, 'meeting:join', meeting.id), { ok: true })
  t.match(await emit(bob, 'meeting:join', meeting.id), { ok: true })

  const error = next(carol, 'meeting:error')
  t.match(await emit(carol, 'meeting:join', meeting.id), { ok: false, code: 'MEETING_FULL' })
  t.match(await error, { meetingId: meeting.id, code: 'MEETING_FULL' })
  t.match(await emit(carol, 'chat:message', { meetingId: meeting.id, text: 'let me in' }), { ok: false, code: 'NOT_IN_MEETING' })

  t.match(await emit(aliceTab, 'meeting:join', meeting.id), { ok: true, participants: ['alice', 'bob'] })

  const bobSeesLeave = next(bob, 'meeting:participants', (p) => p.participants.length === 1)
  carol.disconnect()
  alice.disconnect()
  aliceTab.disconnect()
  t.same((await bobSeesLeave).participants, ['bob'], 'disconnecting leaves the meeting')
  const dave = client(t, base, 'dave')
  await connected(dave)
  t.match(await emit(dave, 'meeting:join', meeting.id), { ok: true, participants: ['bob', 'dave'] }, 'the freed seat can be taken')
  t.match(await emit(dave, 'meeting:join', 'no-such-meeting'), { ok: false, code: 'MEETING_NOT_FOUND' })
  t.match(await emit(dave, 'chat:message', { meetingId: meeting.id, text: '' }), { ok: false, code: 'BAD_MESSAGE' })
})

t.test('deleting a meeting ends it for everyone in it', async (t) => {
  const base = await start(t)
  const { body: meeting } = await call(base, '/api/meetings', { body: { title: 'short' }, as: 'alice' })
  const bob = client(t, base, 'bob')
  await connected(bob)
  await emit(bob, 'meeting:join', meeting.id)
  const ended = next(bob, 'meeting:ended')
  t.equal((await call(base, `/api/meetings/${meeting.id as string}`, { method: 'DELETE', as: 'alice' })).status, 204)
  t.same(await ended, { meetingId: meeting.id })
  t.match(await emit(bob, 'chat:message', { meetingId: meeting.id, text: 'anyone?' }), { ok: false, code: 'NOT_IN_MEETING' })
})

t.test('a connection without x-user-id is refused', async (t) => {
  const base = await start(t)
  const anonymous = client(t, base)
  const error = await next(anonymous, 'connect_error')
  t.ok(error instanceof Error)
  t.notOk(anonymous.connected)

  // At the HTTP level the upgrade gets a 4xx (engine.io answers refused upgrades 400), never 101;
  // a gateway relays that answer as is.
  const { port } = new URL(base)
  const status = await new Promise<number>((resolve, reject) => {
    const request = httpRequest({
      host: '127.0.0.1',
      port,
      path: `${SOCKET_PATH}/?EIO=4&transport=websocket`,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }
    })
    request.on('response', (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.on('upgrade', (_response, socket) => {
      socket.destroy()
      reject(new Error('upgraded without x-user-id'))
    })
    request.on('error', reject)
    request.end()
  })
  t.ok(status >= 400 && status < 500, `refused with ${status}`)
})

t.test('meeting bodies are taken as sent: no type coercion, no unknown fields, no blank titles or control characters', async (t) => {
  const base = await start(t)
  const refused = async (body: unknown, message: string, method = 'POST', path = '/api/meetings'): Promise<void> => {
    const answer = await call(base, path, { method, body, as: 'alice' })
    t.equal(answer.status, 400, `${method} ${JSON.stringify(body)}`)
    t.match(answer.body, { statusCode: 400, error: 'Bad Request', message })
  }
  await refused({ title: 5 }, 'body/title must be string')
  await refused({ title: ['x'] }, 'body/title must be string')
  await refused({ title: 'x', maxParticipants: '10' }, 'body/maxParticipants must be integer')
  await refused({ title: 'x', ownerId: 'bob' }, 'body must NOT have additional properties')
  await refused({ title: '   ' }, 'body/title must not be blank')
  await refused({ title: '\u0000' }, 'body/title must not contain control characters')
  await refused({ title: 'stand\u001b[2Jup' }, 'body/title must not contain control characters')
  t.same((await call(base, '/api/meetings')).body, [], 'nothing was created')

  const created = await call(base, '/api/meetings', { body: { title: '  standup  ', maxParticipants: 4 }, as: 'alice' })
  t.equal(created.status, 201)
  t.match(created.body, { title: 'standup', maxParticipants: 4 }, 'stored trimmed, as the resumes service stores its titles')
  const path = `/api/meetings/${created.body.id as string}`
  await refused({ title: '\t' }, 'body/title must not contain control characters', 'PATCH', path)
  await refused({ title: ' ', maxParticipants: 3 }, 'body/title must not be blank', 'PATCH', path)
  await refused({ maxParticipants: true }, 'body/maxParticipants must be integer', 'PATCH', path)
  await refused({ maxParticipants: 3, owner: 'bob' }, 'body must NOT have additional properties', 'PATCH', path)
  t.match((await call(base, path)).body, { title: 'standup', maxParticipants: 4 }, 'a refused change changes nothing')
  t.match((await call(base, path, { method: 'PATCH', body: { title: ' daily ' }, as: 'alice' })).body, { title: 'daily', maxParticipants: 4 })
})

t.test('an over-long meeting id is the same 400 at any length, in Fastify\'s shape, without the URL', async (t) => {
  const base = await start(t)
  const expected = { statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: 'params/id must NOT have more than 64 characters' }
  for (const length of [65, 100, 101, 500, 5000]) {
    const id = 'a'.repeat(length)
    for (const [method, body] of [['GET', undefined], ['PATCH', { title: 'x' }], ['DELETE', undefined]] as const) {
      const response = await fetch(`${base}/api/meetings/${id}?token=secret`, {
        method,
        headers: { 'x-user-id': 'alice', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body)
      })
      const text = await response.text()
      t.equal(response.status, 400, `${method} ${length} characters`)
      t.match(response.headers.get('content-type'), /^application\/json/)
      t.same(JSON.parse(text), expected)
      t.notOk(text.includes('aaaa') || text.includes('secret'), 'the URL is not echoed')
    }
  }
  const malformed = await fetch(`${base}/api/meetings/%E0%A4%A?token=secret`)
  t.equal(malformed.status, 400)
  t.same(await malformed.json(), { statusCode: 400, code: 'FST_ERR_BAD_URL', error: 'Bad Request', message: 'malformed URL: a percent-encoding does not decode' })
  t.equal((await call(base, `/api/meetings/${'a'.repeat(64)}`)).status, 404, '64 characters are an id, just not a known one')
})
