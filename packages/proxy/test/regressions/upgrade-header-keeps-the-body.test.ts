// With a WebSocket route registered, Node hands every request carrying `Connection: Upgrade`
// to the upgrade listener with its body unparsed. `curl --http2` over plain HTTP sends a POST
// that way (Upgrade: h2c), and the upstream got it with an empty body, on every route.
// A non-WebSocket upgrade is now answered as the plain request it is, body and all.
import t from 'tap'
import { connect } from 'node:net'
import { gateway, listen, upstream } from '../helpers/servers.js'

/** Writes `text` on one connection and resolves with everything read until the gateway closes it or `answers` answers arrived. */
function exchange (base: string, text: string, answers: number): Promise<string> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => { socket.write(text) })
    let received = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no ${answers} answers in 5 s: ${received}`)) }, 5000)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      received += chunk
      if ((received.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= answers && received.endsWith('}')) { clearTimeout(timer); socket.end(); resolve(received) }
    })
    socket.on('error', reject)
  })
}

t.test('an h2c upgrade POST reaches the upstream with its whole body, and the connection stays usable', async (t) => {
  const origin = await upstream(t)
  const app = await gateway(t, {
    upstreams: { echo: { targets: [origin.url] } },
    routes: [{ prefix: '/ws', upstream: 'echo', websocket: true }, { prefix: '/api', upstream: 'echo' }]
  })
  const base = await listen(app)
  const post = 'POST /api/items HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n' +
    'Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello-body'
  const chunked = 'PUT /api/items/1 HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n-again\r\n0\r\n\r\n'
  const received = await exchange(base, post + chunked, 2)
  t.equal((received.match(/HTTP\/1\.1 200/g) ?? []).length, 2, 'both answered 200 on the one connection')
  t.equal(origin.seen.length, 2)
  // Pipelined, the two may reach the upstream in either order.
  const posted = origin.seen.find((seen) => seen.method === 'POST')!
  t.equal(posted.body.toString(), 'hello-body', 'the body arrived byte for byte')
  t.equal(posted.headers.upgrade, undefined, 'the upgrade headers were ignored, not forwarded')
  t.equal(posted.headers['http2-settings'], undefined)
  t.equal(origin.seen.find((seen) => seen.method === 'PUT')?.body.toString(), 'hello-again', 'the next request on the connection was parsed normally')
})

t.test('a POST asking for a WebSocket on a WebSocket route is answered as a POST, body included', async (t) => {
  const origin = await upstream(t)
  const app = await gateway(t, {
    upstreams: { echo: { targets: [origin.url] } },
    routes: [{ prefix: '/ws', upstream: 'echo', websocket: true, methods: ['GET', 'POST'] }]
  })
  const base = await listen(app)
  const post = 'POST /ws/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Content-Length: 4\r\n\r\ndata'
  await exchange(base, post, 1)
  t.equal(origin.seen.length, 1)
  t.equal(origin.seen[0]!.body.toString(), 'data')
})

t.test('an h2c upgrade pipelined behind a request still being answered is answered in turn, and so is what follows it', async (t) => {
  const origin = await upstream(t, (req, res, body) => {
    // The first answer takes a while: the upgrade request arrives while it is in flight.
    const payload = JSON.stringify({ url: req.url, body: body.toString() })
    setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }).end(payload) }, req.url === '/first' ? 200 : 0)
  })
  const app = await gateway(t, {
    upstreams: { echo: { targets: [origin.url] } },
    routes: [{ prefix: '/ws', upstream: 'echo', websocket: true }, { prefix: '/api', upstream: 'echo' }]
  })
  const base = await listen(app)
  const pipelined = 'GET /api/first HTTP/1.1\r\nHost: gw\r\n\r\n' +
    'POST /api/second HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello' +
    'GET /api/third HTTP/1.1\r\nHost: gw\r\n\r\n'
  const received = await exchange(base, pipelined, 3)
  const bodies = received.split(/HTTP\/1\.1 200 OK/).slice(1).map((answer) => answer.slice(answer.indexOf('{')))
  t.same(bodies.map((body) => JSON.parse(body) as { url: string, body: string }), [{ url: '/first', body: '' }, { url: '/second', body: 'hello' }, { url: '/third', body: '' }], 'three answers, in order')
})

t.test('a WebSocket asked of a route that does not tunnel them is a plain request: its body and what follows it are kept', async (t) => {
  const origin = await upstream(t)
  const app = await gateway(t, {
    upstreams: { echo: { targets: [origin.url] } },
    routes: [{ prefix: '/ws', upstream: 'echo', websocket: true }, { prefix: '/api', upstream: 'echo' }]
  })
  const base = await listen(app)
  const pipelined = 'GET /api/getws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 5\r\n\r\nhello' +
    'GET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n'
  await exchange(base, pipelined, 2)
  t.equal(origin.seen.length, 2, 'both reached the upstream')
  t.equal(origin.seen.find((seen) => seen.url === '/getws')?.body.toString(), 'hello')
  t.equal(origin.seen.find((seen) => seen.url === '/getws')?.headers.upgrade, undefined)
})
