// Two ways an upstream's answer was changed on the way: a 304 carrying the Content-Length
// of the 200 it stands for (RFC 9110 8.6) became a 502, because undici counted the body a
// 304 never has against it; and an answer without Content-Type went out labelled
// application/octet-stream (Fastify's default for a Buffer), which with nosniff can stop
// a browser from using a cached script or stylesheet refreshed by a 304.
import t, { type Test } from 'tap'
import { request } from 'undici'
import { gateway, listen, rawUpstream } from '../helpers/servers.js'

async function through (t: Test, answer: string): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  const origin = await rawUpstream(t, (socket) => { socket.write(answer) })
  const app = await gateway(t, { upstreams: { raw: { targets: [origin.url] } }, routes: [{ prefix: '/api', upstream: 'raw' }] })
  const base = await listen(app)
  const response = await request(`${base}/api/x`)
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() }
}

t.test('a 304 with the 200\'s Content-Length is relayed without a body, and without that length', async (t) => {
  const answer = await through(t, 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 100\r\n\r\n')
  t.equal(answer.status, 304)
  t.equal(answer.headers.etag, '"v1"')
  t.equal(answer.headers['content-length'], undefined, 'optional, and fatal to undici (Node\'s fetch) clients')
  t.equal(answer.headers['content-type'], undefined, 'no type added')
  t.equal(answer.body, '')
})

t.test('a 304 without Content-Length gets none, and no type', async (t) => {
  const answer = await through(t, 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
  t.equal(answer.status, 304)
  t.equal(answer.headers['content-length'], undefined)
  t.equal(answer.headers['content-type'], undefined)
})

t.test('a 204 gets no Content-Length and no type', async (t) => {
  const answer = await through(t, 'HTTP/1.1 204 No Content\r\n\r\n')
  t.equal(answer.status, 204)
  t.equal(answer.headers['content-length'], undefined)
  t.equal(answer.headers['content-type'], undefined)
})

t.test('an answer the upstream sent without Content-Type gets none, its body intact', async (t) => {
  const answer = await through(t, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello')
  t.equal(answer.status, 200)
  t.equal(answer.headers['content-type'], undefined)
  t.equal(answer.body, 'hello')
  const typed = await through(t, 'HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 5\r\n\r\nhello')
  t.equal(typed.headers['content-type'], 'text/css', 'a type the upstream sent is kept')
  t.equal(typed.headers['content-length'], '5')
  t.equal(typed.body, 'hello')
})
