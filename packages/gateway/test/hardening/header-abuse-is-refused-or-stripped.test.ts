import t from 'tap'
import { createHash } from 'node:crypto'
import type { Manifest } from '../../src/index.js'
import { exchange, publicManifest, recordingUpstream, startGateway, type RecordingUpstream } from '../helpers/hostile.js'

/*
 * Header abuse: sizes and counts past the documented limits get 431, control bytes in
 * header values get 400, and headers that would let a client speak for the gateway
 * (identity, forwarding, URL and method overrides) never reach the upstream, under any
 * spelling. The Host header and absolute-form targets never choose where a request goes.
 */

const GET = 'GET /api/x HTTP/1.1\r\nHost: gateway.test\r\n'
const fields = (count: number): string => Array.from({ length: count }, (_, i) => `X-Field-${i}: v\r\n`).join('')

t.test('a request line or headers past server.maxHeaderSize (default 16 KiB) get 431 and a closed connection', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const big = await exchange(port, `${GET}X-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`)
  t.equal(big.responses[0]?.status, 431, 'one oversized header')
  t.ok(big.closed)
  const line = await exchange(port, `GET /api/${'a'.repeat(17 * 1024)} HTTP/1.1\r\nHost: gateway.test\r\n\r\n`)
  t.equal(line.responses[0]?.status, 431, 'an oversized request line')
  t.ok(line.closed)
  const many = await exchange(port, `${GET}${Array.from({ length: 90 }, (_, i) => `X-F${i}: ${'b'.repeat(200)}\r\n`).join('')}\r\n`)
  t.equal(many.responses[0]?.status, 431, 'many headers adding up past the limit')
  t.equal(upstream.started.length, 0, 'the upstream saw none of them')
  const fits = await exchange(port, `${GET}X-Big: ${'a'.repeat(15 * 1024)}\r\nConnection: close\r\n\r\n`, { responses: 1 })
  t.equal(fits.responses[0]?.status, 200, 'a 15 KiB header is within the default')
  t.equal(upstream.completed.length, 1)
})

t.test('server.maxHeaderSize is configurable', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream, { maxHeaderSize: '4kb' }))
  const big = await exchange(port, `${GET}X-Big: ${'a'.repeat(5 * 1024)}\r\n\r\n`)
  t.equal(big.responses[0]?.status, 431)
  t.equal(upstream.started.length, 0)
})

t.test('more header fields than server.maxHeaders (default 100) get 431, never a silently truncated request', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const over = await exchange(port, `${GET}${fields(100)}\r\n`)
  t.equal(over.responses[0]?.status, 431, 'Host + 100 fields = 101')
  t.ok(over.closed)
  t.match(over.responses[0]?.body, /more than 100 header fields/)
  const far = await exchange(port, `${GET}${fields(3000)}\r\n`)
  t.equal(far.responses[0]?.status, 431, 'far past Node\'s own maxHeadersCount (2000), still refused rather than truncated')
  t.equal(upstream.started.length, 0)
  const at = await exchange(port, `${GET}${fields(98)}Connection: close\r\n\r\n`, { responses: 1 })
  t.equal(at.responses[0]?.status, 200, 'exactly 100 fields pass')
  t.equal(upstream.completed[0]?.headers['x-field-97'], 'v', 'all of them forwarded')
})

t.test('server.maxHeaders is configurable', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream, { maxHeaders: 10 }))
  t.equal((await exchange(port, `${GET}${fields(10)}\r\n`)).responses[0]?.status, 431)
  t.equal((await exchange(port, `${GET}${fields(8)}Connection: close\r\n\r\n`, { responses: 1 })).responses[0]?.status, 200)
  t.equal(upstream.started.length, 1)
})

t.test('CR, LF or NUL inside a header name or value is refused by the parser with 400; nothing is forwarded', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const cases: Array<[string, string]> = [
    ['a bare CR in a value', `${GET}X-A: b\rInjected: 1\r\n\r\n`],
    ['a NUL in a value', `${GET}X-A: b\u0000c\r\n\r\n`],
    ['a bare LF in a value (a header injection)', `${GET}X-A: b\nX-User-Id: admin\r\n\r\n`],
    ['a NUL in a name', `${GET}X-\u0000A: b\r\n\r\n`],
    ['a space in a name', `${GET}X A: b\r\n\r\n`],
    ['a CR in the request target', 'GET /api/x\r HTTP/1.1\r\nHost: gateway.test\r\n\r\n'],
    ['a control byte in the request target', 'GET /api/\u0001 HTTP/1.1\r\nHost: gateway.test\r\n\r\n']
  ]
  for (const [name, bytes] of cases) {
    const result = await exchange(port, bytes)
    t.equal(result.responses[0]?.status, 400, name)
    t.ok(result.closed, `${name}: closed`)
  }
  t.equal(upstream.started.length, 0)
})

t.test('two Host headers get 400 (RFC 9112 section 3.2)', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const result = await exchange(port, 'GET /api/x HTTP/1.1\r\nHost: gateway.test\r\nhost: evil.test\r\n\r\n')
  t.equal(result.responses[0]?.status, 400)
  t.ok(result.closed)
  t.equal(upstream.started.length, 0)
})

function sha256 (value: string): string {
  return createHash('sha256').update(value).digest('hex')
}

function identityManifest (upstream: RecordingUpstream): Manifest {
  return {
    version: 1,
    server: { docs: false },
    auth: {
      apiKeys: { header: 'x-api-key', keys: [{ id: 'partner-1', sha256: sha256('partner-key'), roles: ['partner'] }] },
      identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' }
    },
    upstreams: { main: { targets: [upstream.url] } },
    routes: [
      { prefix: '/api', upstream: 'main', rewritePrefix: '/inner', auth: false },
      { prefix: '/private', upstream: 'main', auth: { methods: ['apiKey'] } }
    ]
  }
}

const SPOOFED_IDENTITY =
  'X-User-Id: admin\r\nx_user_id: admin\r\nx.user.id: admin\r\nX_USER_ROLES: admin\r\nx-user-roles: admin\r\nX.User_Roles: admin\r\n'

t.test('client copies of identity headers never reach the upstream, under any alias, on public and protected routes', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, identityManifest(upstream))
  const open = await exchange(port, `${GET}${SPOOFED_IDENTITY}Connection: close\r\n\r\n`, { responses: 1 })
  t.equal(open.responses[0]?.status, 200)
  const names = (index: number): string[] => upstream.completed[index]!.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase())
  t.notOk(names(0).some((name) => /^x[-_.]user[-_.](id|roles)$/.test(name)), 'public route: no identity header at all')

  const signedIn = await exchange(port,
    `GET /private/x HTTP/1.1\r\nHost: gateway.test\r\nX-Api-Key: partner-key\r\n${SPOOFED_IDENTITY}Connection: close\r\n\r\n`, { responses: 1 })
  t.equal(signedIn.responses[0]?.status, 200)
  const seen = upstream.completed[1]!
  t.same(names(1).filter((name) => /^x[-_.]user[-_.](id|roles)$/.test(name)).sort(), ['x-user-id', 'x-user-roles'], 'only the gateway\'s own copies')
  t.equal(seen.headers['x-user-id'], 'partner-1', 'set from the verified identity')
  t.equal(seen.headers['x-user-roles'], 'partner')

  const refused = await exchange(port, `GET /private/x HTTP/1.1\r\nHost: gateway.test\r\n${SPOOFED_IDENTITY}Connection: close\r\n\r\n`, { responses: 1 })
  t.equal(refused.responses[0]?.status, 401, 'a spoofed identity is no credential')
  t.equal(upstream.started.length, 2)
})

t.test('forwarding and override headers from an untrusted client are removed, under any alias', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const spoofed = [
    'X-Forwarded-For: 6.6.6.6', 'x_forwarded_for: 6.6.6.6', 'X-Real-IP: 6.6.6.6', 'x.real.ip: 6.6.6.6', 'Forwarded: for=6.6.6.6',
    'X-Forwarded-Host: evil.test', 'X_Forwarded_Host: evil.test', 'X-Forwarded-Proto: https', 'X-Forwarded-Prefix: /admin',
    'CF-Connecting-IP: 6.6.6.6', 'True-Client-IP: 6.6.6.6',
    'X-Original-URL: /admin', 'x_original_url: /admin', 'X-Rewrite-URL: /admin', 'X.Rewrite.URL: /admin',
    'X-HTTP-Method-Override: DELETE', 'x_http_method_override: DELETE', 'X-Method-Override: DELETE', 'X-HTTP-Method: DELETE',
    'x_request_id: evil.test', 'X.Request.Id: evil.test', 'HTTP2-Settings: AAMAAABkAAQAAP__'
  ].join('\r\n')
  const result = await exchange(port, `${GET}${spoofed}\r\nConnection: close\r\n\r\n`, { responses: 1 })
  t.equal(result.responses[0]?.status, 200)
  const seen = upstream.completed[0]!
  t.equal(seen.method, 'GET', 'the method is the request line\'s')
  t.equal(seen.url, '/inner/x', 'the path is the request line\'s')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'replaced by the socket peer')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-host'], 'gateway.test')
  t.notMatch(JSON.stringify(seen.rawHeaders), /6\.6\.6\.6|evil\.test|\/admin|DELETE|https/, 'no spoofed value reached the upstream')
  const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase())
  for (const name of names) {
    t.notMatch(name, /real|original|rewrite|override|http[-_.]method|connecting|true-client|prefix|^forwarded$|_|\.|http2/, `${name} is not a spoofable header`)
  }
})

t.test('neither Host nor an absolute-form target steers the request: the configured upstream gets it, the evil one sees nothing', async (t) => {
  const upstream = await recordingUpstream('configured')
  const evil = await recordingUpstream('evil')
  t.teardown(upstream.close)
  t.teardown(evil.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  const evilHost = `127.0.0.1:${evil.port}`

  const byHost = await exchange(port, `GET /api/x HTTP/1.1\r\nHost: ${evilHost}\r\nConnection: close\r\n\r\n`, { responses: 1 })
  t.equal(byHost.responses[0]?.status, 200)
  t.equal((JSON.parse(byHost.responses[0]!.body) as { served: string }).served, 'configured')
  t.equal(upstream.completed[0]?.headers.host, `127.0.0.1:${upstream.port}`, 'the upstream sees its own address as Host')

  for (const target of [`http://${evilHost}/api/x`, `http://${evilHost}/`, `https://${evilHost}/api/x`, `//${evilHost}/api/x`, `${evilHost}`]) {
    const result = await exchange(port, `GET ${target} HTTP/1.1\r\nHost: ${evilHost}\r\nConnection: close\r\n\r\n`, { responses: 1 })
    t.ok([400, 404].includes(result.responses[0]?.status ?? 0), `GET ${target}: refused with ${result.responses[0]?.status ?? 'nothing'}`)
  }
  t.equal(evil.started.length, 0, 'the evil upstream saw nothing')
  t.equal(upstream.started.length, 1, 'the configured upstream saw only the one well-formed request')
})
