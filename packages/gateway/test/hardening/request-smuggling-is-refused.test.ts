import t from 'tap'
import { exchange, publicManifest, recordingUpstream, startGateway } from '../helpers/hostile.js'

/*
 * Request framing (HTTP request smuggling, RFC 9112 sections 6 and 11.2): every
 * ambiguous or malformed framing is refused by Node's parser (llhttp, strict mode)
 * or the gateway with 400/405/501, the connection is closed, and not one byte of it
 * becomes a request to the upstream. The gateway never forwards a client's framing:
 * the upstream request is framed anew by the proxy.
 */

const REFUSED = [400, 405, 501]
const HEAD = 'POST /api/x HTTP/1.1\r\nHost: gateway.test\r\n'

const MALFORMED: Array<[string, string]> = [
  ['Content-Length with Transfer-Encoding (CL.TE)', `${HEAD}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`],
  ['Transfer-Encoding before Content-Length (TE.CL)', `${HEAD}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`],
  ['two different Content-Length headers', `${HEAD}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`],
  ['two equal Content-Length headers', `${HEAD}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`],
  ['a Content-Length list', `${HEAD}Content-Length: 5, 5\r\n\r\nhello`],
  ['a Content-Length with trailing garbage', `${HEAD}Content-Length: 5x\r\n\r\nhello`],
  ['a negative Content-Length', `${HEAD}Content-Length: -5\r\n\r\nhello`],
  ['a signed Content-Length', `${HEAD}Content-Length: +5\r\n\r\nhello`],
  ['a hexadecimal Content-Length', `${HEAD}Content-Length: 0x5\r\n\r\nhello`],
  ['Transfer-Encoding: xchunked', `${HEAD}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: chunked, identity (chunked not last)', `${HEAD}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: identity', `${HEAD}Transfer-Encoding: identity\r\n\r\nhello`],
  ['a tab after chunked', `${HEAD}Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n`],
  ['two Transfer-Encoding headers, chunked first', `${HEAD}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`],
  ['whitespace between the header name and the colon', `${HEAD}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`],
  ['a bad chunk size', `${HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`],
  ['a chunk size with an overflowing length', `${HEAD}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n`],
  ['bare LF line endings', 'GET /api/x HTTP/1.1\nHost: gateway.test\n\n'],
  ['one bare LF among CRLFs', 'GET /api/x HTTP/1.1\r\nHost: gateway.test\nX-A: b\r\n\r\n'],
  ['obs-fold header continuation', 'GET /api/x HTTP/1.1\r\nHost: gateway.test\r\nX-A: b\r\n c\r\n\r\n'],
  ['obs-fold continuing Transfer-Encoding', `${HEAD}Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n`],
  ['a lower-case method', 'get /api/x HTTP/1.1\r\nHost: gateway.test\r\n\r\n'],
  ['an unknown method', 'SMUGGLE /api/x HTTP/1.1\r\nHost: gateway.test\r\n\r\n'],
  ['an HTTP/1.1 request without Host', 'GET /api/x HTTP/1.1\r\n\r\n'],
  ['an unknown HTTP version', 'GET /api/x HTTP/1.7\r\nHost: gateway.test\r\n\r\n']
]

t.test('malformed or ambiguous framing is refused, the connection closed, and the upstream sees nothing', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  for (const [name, bytes] of MALFORMED) {
    const result = await exchange(port, bytes)
    t.equal(result.responses.length, 1, `${name}: exactly one response`)
    t.ok(REFUSED.includes(result.responses[0]?.status ?? 0), `${name}: refused with ${result.responses[0]?.status ?? 'nothing'}`)
    t.ok(result.closed, `${name}: connection closed`)
  }
  t.equal(upstream.started.length, 0, 'the upstream never saw a request, not even a partial one')
})

t.test('CONNECT gets 405 with Allow and a closed connection; nothing is tunnelled', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const result = await exchange(port, `CONNECT 127.0.0.1:${upstream.port} HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\n\r\n`)
  t.equal(result.responses[0]?.status, 405)
  t.match(result.responses[0]?.headers.allow, /GET/)
  t.ok(result.closed)
  t.equal(upstream.started.length, 0)
})

t.test('TRACE gets 405 on a routed path and is never forwarded (nothing is reflected)', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const result = await exchange(port, 'TRACE /api/x HTTP/1.1\r\nHost: gateway.test\r\nCookie: secret=1\r\nConnection: close\r\n\r\n')
  t.equal(result.responses[0]?.status, 405)
  t.match(result.responses[0]?.headers.allow, /GET/)
  t.notMatch(result.text, /secret=1/, 'the request is not echoed back')
  t.equal(upstream.started.length, 0)
})

t.test('pipelined keep-alive requests are answered in order, each with its own response, one upstream request each', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const body = 'hello'
  const pipeline =
    'GET /api/1 HTTP/1.1\r\nHost: gateway.test\r\n\r\n' +
    `POST /api/2 HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
    'POST /api/3 HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' +
    'GET /api/4 HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n'
  const result = await exchange(port, pipeline)
  t.ok(result.closed, 'closed after the request that asked for it')
  t.same(result.responses.map((response) => response.status), [200, 200, 200, 200])
  t.same(result.responses.map((response) => (JSON.parse(response.body) as { url: string }).url), ['/inner/1', '/inner/2', '/inner/3', '/inner/4'],
    'each response answers its own request, in order')
  // Each request is proxied on its own upstream connection, so their arrival order there is free.
  t.same(upstream.started.map((request) => `${request.method} ${request.url} ${request.body.toString()}`).sort(),
    ['GET /inner/1 ', 'POST /inner/2 hello', 'POST /inner/3 abc', 'GET /inner/4 '].sort(), 'exactly one upstream request per client request')
  t.ok(upstream.started.every((request) => request.complete))
})

t.test('a request hidden in a body stays a body: the upstream sees one request, never two', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const hidden = 'GET /api/admin HTTP/1.1\r\nHost: gateway.test\r\n\r\n'
  const result = await exchange(port,
    `POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: ${hidden.length}\r\nConnection: close\r\n\r\n${hidden}`)
  t.equal(result.responses.length, 1, 'one response')
  t.equal(result.responses[0]?.status, 200)
  t.equal(upstream.started.length, 1, 'one upstream request')
  t.equal(upstream.started[0]?.url, '/inner/x')
  t.equal(upstream.started[0]?.body.toString('latin1'), hidden, 'the smuggled request arrived as the body, byte for byte')
})

t.test('a chunked body the client ends early with a smuggled request after it: the tail is parsed as the next request, not merged', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const result = await exchange(port,
    'POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' +
    'GET /api/next HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n')
  t.same(result.responses.map((response) => response.status), [200, 200])
  t.same(upstream.started.map((request) => `${request.method} ${request.url} ${request.body.length}`).sort(), ['GET /inner/next 0', 'POST /inner/x 0'],
    'the gateway and the upstream agree on where each request ends')
})

t.test('optional whitespace around "chunked" is RFC 9110 whitespace, not a second framing: parsed as chunked and re-framed upstream', async (t) => {
  // RFC 9110 section 5.5: a field value excludes leading and trailing whitespace, so
  // "chunked " and "\tchunked" are chunked (Node agrees). This is only dangerous when a
  // proxy forwards the client's framing to a server that disagrees; the gateway never
  // does: the upstream gets the decoded body under the proxy's own framing.
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  for (const value of ['chunked ', '\tchunked', '  chunked  ']) {
    const before = upstream.started.length
    const result = await exchange(port, `${HEAD}Transfer-Encoding:${value}\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
    t.equal(result.responses[0]?.status, 200, `${JSON.stringify(value)}: answered`)
    const seen = upstream.started.slice(before)
    t.equal(seen.length, 1, `${JSON.stringify(value)}: one upstream request`)
    t.equal(seen[0]?.body.toString(), 'hello', `${JSON.stringify(value)}: the body decoded as chunked`)
    t.ok(seen[0]?.complete, `${JSON.stringify(value)}: complete upstream request`)
  }
})
