// Every answer of the gateway carries helmet's headers and the request id, including
// the ones it gives before a route runs: its own request checks (431, 400, TRACE 405)
// and the router's refusal of a URL it cannot parse. They used to come without them,
// because the checks ran before the hooks that set them.
import t from 'tap'
import { exchange, publicManifest, recordingUpstream, startGateway } from '../helpers/hostile.js'

const REFUSALS: Array<[string, string, number]> = [
  ['TRACE', 'TRACE /api/x HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n', 405],
  ['a path not in normal form', 'GET /api/../api/x HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n', 400],
  ['two Host headers', 'GET /api/x HTTP/1.1\r\nHost: gateway.test\r\nHost: other.test\r\nConnection: close\r\n\r\n', 400],
  ['an HTTP/1.1 request without Host', 'GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n', 400],
  ['more header fields than maxHeaders', `GET /api/x HTTP/1.1\r\nHost: gateway.test\r\n${Array.from({ length: 100 }, (_, i) => `X-F${i}: v\r\n`).join('')}Connection: close\r\n\r\n`, 431],
  ['a URL the router cannot decode', 'GET /api/%zz HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n', 400],
  ['no route', 'GET /nowhere HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n', 404],
  // Refused by Node's parser before a request exists (the gateway's clientErrorHandler).
  ['headers over the size limit', `GET /api/x HTTP/1.1\r\nHost: gateway.test\r\nX-Big: ${'a'.repeat(70_000)}\r\nConnection: close\r\n\r\n`, 431],
  ['a request line that does not parse', 'GET /api/x HTTP/9.x\r\nHost: gateway.test\r\n\r\n', 400]
]

t.test('refusals before any route runs carry the security headers and the request id', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  for (const [name, request, status] of REFUSALS) {
    const [answer] = (await exchange(port, request)).responses
    t.equal(answer?.status, status, `${name}: ${status}`)
    t.equal(answer?.headers['x-content-type-options'], 'nosniff', `${name}: helmet's headers`)
    t.match(answer?.headers['content-security-policy'], /default-src 'self'/, `${name}: the CSP`)
    const id = answer?.headers['x-request-id']
    t.match(id, /^[A-Za-z0-9._:-]{1,128}$/, `${name}: a request id`)
    t.equal(JSON.parse(answer?.body ?? '{}').requestId, id, `${name}: the same id as in the body`)
  }
  t.equal(upstream.started.length, 0, 'nothing reached the upstream')
})

t.test('with securityHeaders: false no refusal carries them, and each still has its request id', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream, { securityHeaders: false }))
  for (const [name, request, status] of REFUSALS) {
    const [answer] = (await exchange(port, request)).responses
    t.equal(answer?.status, status, `${name}: ${status}`)
    t.equal(answer?.headers['x-content-type-options'], undefined, `${name}: no helmet header`)
    t.equal(answer?.headers['content-security-policy'], undefined, `${name}: no CSP`)
    t.match(answer?.headers['x-request-id'], /^[A-Za-z0-9._:-]{1,128}$/, `${name}: a request id`)
  }
})

t.test('an HTTP/1.0 request may come without Host: it is proxied, with no empty X-Forwarded-Host', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const [answer] = (await exchange(port, 'GET /api/x HTTP/1.0\r\n\r\n')).responses
  t.equal(answer?.status, 200)
  t.equal(upstream.started.length, 1)
  t.equal(upstream.started[0]!.headers['x-forwarded-host'], undefined)
})
