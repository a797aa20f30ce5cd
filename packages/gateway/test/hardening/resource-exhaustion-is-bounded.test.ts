import t from 'tap'
import { createServer } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { eventually, exchange, publicManifest, recordingUpstream, startGateway } from '../helpers/hostile.js'

/*
 * Resource limits: a client cannot hold a connection by trickling its headers or
 * body, cannot make the gateway read (or the upstream receive) a body past bodyLimit,
 * cannot open more connections than server.maxConnections, and cannot make the
 * gateway buffer a response it never reads. Each assertion is about what happened
 * (closed, refused, what the upstream saw), with time bounds only as generous
 * ceilings for a broken run.
 */

t.test('slowloris: headers trickled byte by byte are cut off after headersTimeout; the upstream sees nothing', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream, { headersTimeout: '500ms' }))
  // 400 bytes at one byte per 25 ms would take 10 s: far past the 500 ms allowed.
  const result = await exchange(port, `GET /api/x HTTP/1.1\r\nHost: gateway.test\r\nX-Slow: ${'a'.repeat(400)}\r\n\r\n`, { trickleMs: 25, boundMs: 9_000 })
  t.ok(result.closed, 'the gateway closed the connection')
  t.ok(result.responses.length === 0 || result.responses[0]?.status === 408, `answered ${result.responses[0]?.status ?? 'nothing'}`)
  t.equal(upstream.started.length, 0)
})

t.test('a slow body is cut off after requestTimeout; the upstream never receives a complete request', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream, { headersTimeout: '500ms', requestTimeout: '1s' }))
  const head = 'POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 400\r\n\r\n'
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  const closed = new Promise<boolean>((resolve) => {
    const bound = setTimeout(() => { resolve(false) }, 9_000)
    socket.on('close', () => { clearTimeout(bound); resolve(true) })
  })
  socket.write(head)
  let sent = 0
  const trickle = setInterval(() => {
    if (sent >= 400 || socket.destroyed) clearInterval(trickle)
    else { socket.write('b'); sent++ }
  }, 25)
  t.teardown(() => { clearInterval(trickle); socket.destroy() })
  t.ok(await closed, 'the gateway closed the connection')
  t.ok(sent < 400, 'before the body was complete')
  await eventually(() => upstream.started.every((request) => request.aborted))
  t.equal(upstream.completed.length, 0, 'no complete (truncated) request reached the upstream')
})

t.test('Content-Length over bodyLimit: 413 before a byte of the body is sent, and the upstream is not contacted', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream, { bodyLimit: 100 }))
  // No body follows the headers: the answer can only come from the declared length.
  const result = await exchange(port, 'POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 101\r\n\r\n')
  t.equal(result.responses[0]?.status, 413)
  t.ok(result.closed, 'the connection is not reused: the unread body would be read as the next request')
  const huge = await exchange(port, 'POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 99999999999999999999\r\n\r\n')
  t.ok([400, 413].includes(huge.responses[0]?.status ?? 0), `an absurd length is refused (${huge.responses[0]?.status ?? 'nothing'})`)
  t.equal(upstream.started.length, 0)
  const exact = await exchange(port, `POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 100\r\nConnection: close\r\n\r\n${'a'.repeat(100)}`, { responses: 1 })
  t.equal(exact.responses[0]?.status, 200, 'exactly bodyLimit passes (limits are inclusive)')
  t.equal(upstream.completed[0]?.body.length, 100)
})

t.test('a chunked body growing past bodyLimit gets 413; the upstream sees an aborted request, never a complete truncated one', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream, { bodyLimit: 1000 }))
  const chunk = (size: number): string => `${size.toString(16)}\r\n${'c'.repeat(size)}\r\n`
  const result = await exchange(port, `POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(600)}${chunk(600)}${chunk(600)}0\r\n\r\n`)
  t.equal(result.responses[0]?.status, 413)
  t.ok(result.closed)
  await eventually(() => upstream.started.every((request) => request.aborted))
  t.equal(upstream.completed.length, 0, 'never a complete request')
  t.ok(upstream.started.every((request) => request.body.length <= 1000), 'and never more than bodyLimit bytes of it')
  const exact = await exchange(port, `POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk(500)}${chunk(500)}0\r\n\r\n`, { responses: 1 })
  t.equal(exact.responses[0]?.status, 200, 'a chunked body of exactly bodyLimit passes')
  t.equal(upstream.completed[0]?.body.length, 1000)
})

async function openAndAsk (port: number): Promise<{ socket: Socket, answer: Promise<string>, closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let text = ''
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); if (text.includes('\r\n\r\n')) resolve(text) })
    socket.on('close', () => { resolve(text) })
  })
  const closed = new Promise<void>((resolve) => socket.on('close', () => { resolve() }))
  await new Promise<void>((resolve) => socket.on('connect', resolve))
  socket.write('GET /api/x HTTP/1.1\r\nHost: gateway.test\r\n\r\n')
  return { socket, answer, closed }
}

t.test('server.maxConnections caps simultaneous connections: the one past the cap is closed unanswered', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { app, port } = await startGateway(t, publicManifest(upstream, { maxConnections: 2 }))
  const first = await openAndAsk(port)
  const second = await openAndAsk(port)
  t.teardown(() => { first.socket.destroy(); second.socket.destroy() })
  t.match(await first.answer, /^HTTP\/1\.1 200/)
  t.match(await second.answer, /^HTTP\/1\.1 200/, 'two keep-alive connections held open')
  const third = await openAndAsk(port)
  await third.closed
  t.equal(await third.answer, '', 'the third connection is closed without an answer')
  t.equal(upstream.started.length, 2, 'and its request never reached the upstream')

  first.socket.destroy()
  // Node frees the slot once it has seen the close; wait for that (bounded).
  for (let i = 0; i < 500; i++) {
    const count = await new Promise<number>((resolve) => { app.server.getConnections((_error, n) => { resolve(n) }) })
    if (count <= 1) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const fourth = await openAndAsk(port)
  t.teardown(() => { fourth.socket.destroy() })
  t.match(await fourth.answer, /^HTTP\/1\.1 200/, 'a freed slot is usable again')
})

t.test('a client that never reads its response cannot make the gateway buffer it: backpressure reaches the upstream', async (t) => {
  const total = 64 * 1024 * 1024
  const block = Buffer.alloc(64 * 1024, 0x61)
  let written = 0
  let blocked = false
  let lastProgress = Date.now()
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
    const pump = (): void => {
      while (written < total) {
        written += block.length
        lastProgress = Date.now()
        if (!response.write(block)) {
          blocked = true
          response.once('drain', () => { blocked = false; pump() })
          return
        }
      }
      response.end()
    }
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  const { port: upstreamPort } = server.address() as AddressInfo
  const { port } = await startGateway(t, {
    version: 1,
    server: { docs: false },
    upstreams: { big: { targets: [`http://127.0.0.1:${upstreamPort}`] } },
    routes: [{ prefix: '/big', upstream: 'big', auth: false }]
  })
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => { socket.destroy() })
  await new Promise<void>((resolve) => socket.on('connect', resolve))
  socket.pause()
  socket.write('GET /big HTTP/1.1\r\nHost: gateway.test\r\n\r\n')
  // Wait until the upstream is held back and has made no progress for a while.
  await eventually(() => blocked && Date.now() - lastProgress > 500, 20_000)
  t.ok(written < total / 2, `the upstream was held back after ${(written / 1048576).toFixed(1)} MiB of 64 MiB (socket buffers, not the gateway's memory)`)

  let received = 0
  socket.on('data', (chunk: Buffer) => { received += chunk.length })
  socket.resume()
  await eventually(() => received > total, 30_000)
  t.ok(received > total, 'once the client reads, the whole response flows')
})
