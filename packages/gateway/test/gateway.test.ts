import t from 'tap'
import { randomBytes, createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { createGateway, type Manifest } from '../src/index.js'
import { exchange, startGateway } from './helpers/hostile.js'
import { closedPort, echoUpstream, type EchoUpstream } from './helpers/upstream.js'

function publicManifest (upstream: EchoUpstream, extra: Partial<Manifest> = {}): Manifest {
  return {
    version: 1,
    server: { bodyLimit: '64kb', cors: { origin: ['http://localhost:5173'], credentials: true } },
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [
      { prefix: '/api/echo', upstream: 'echo', rewritePrefix: '/inner', auth: false, methods: ['GET', 'POST'] },
      { prefix: '/api/open', upstream: 'echo', auth: false }
    ],
    ...extra
  }
}

t.test('proxies by prefix, rewriting it and keeping the query string byte for byte', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))
  const response = await request(`${base}/api/echo/a/b?x=1&y=%2F&z=%20`)
  t.equal(response.statusCode, 200)
  const body = await response.body.json() as { url: string }
  t.equal(body.url, '/inner/a/b?x=1&y=%2F&z=%20')
  const bare = await request(`${base}/api/open?q`)
  t.equal(((await bare.body.json()) as { url: string }).url, '/?q', 'rewritePrefix defaults to "": the prefix is removed')
})

t.test('prefix "/" catches every path no other route (nor the gateway\'s own endpoints) takes', async (t) => {
  const echo = await echoUpstream({ name: 'echo' })
  const site = await echoUpstream({ name: 'site' })
  t.teardown(echo.close)
  t.teardown(site.close)
  const { base } = await startGateway(t, {
    version: 1,
    upstreams: { echo: { targets: [echo.url] }, site: { targets: [site.url] } },
    routes: [
      { prefix: '/api/echo', upstream: 'echo', rewritePrefix: '/inner', auth: false },
      { prefix: '/', upstream: 'site', auth: false }
    ]
  })
  const served = async (path: string): Promise<{ status: number, body: { served?: string, url?: string } }> => {
    const response = await request(`${base}${path}`)
    const text = await response.body.text()
    return { status: response.statusCode, body: text.startsWith('{') ? JSON.parse(text) as { served?: string, url?: string } : {} }
  }
  t.match(await served('/api/echo/x'), { status: 200, body: { served: 'echo', url: '/inner/x' } }, 'the longer prefix wins')
  t.match(await served('/about/team?x=1'), { status: 200, body: { served: 'site', url: '/about/team?x=1' } }, 'the rest goes to "/", path kept')
  t.match(await served('/'), { status: 200, body: { served: 'site', url: '/' } })
  t.match(await served('/api/echoes'), { status: 200, body: { served: 'site' } }, 'not a path under /api/echo')
  t.equal((await served('/healthz')).status, 200, 'the gateway\'s own endpoints still answer')
  t.equal(site.seen.some((seen) => seen.url === '/healthz'), false)
  const metrics = await request(`${base}/metrics`)
  t.match(await metrics.body.text(), /tollgate_requests_total\{route="\/",method="GET",status="200"\} 3/, 'labelled by the prefix "/"')
})

t.test('encoded unreserved characters are decoded before routing, and forwarded decoded', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base, port } = await startGateway(t, publicManifest(upstream))
  const response = await request(`${base}/api/%65cho/%7Euser/%41?q=%7E`)
  t.equal(response.statusCode, 200, '/api/%65cho is /api/echo')
  t.equal(((await response.body.json()) as { url: string }).url, '/inner/~user/A?q=%7E', 'the query as sent')
  // Raw, as undici would resolve the dots itself before sending.
  const [dots] = (await exchange(port, 'GET /api/echo/%2e%2e/x HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n')).responses
  t.equal(dots?.status, 400, 'an encoded dot segment is still refused')
  t.equal(upstream.seen.length, 1)
})

t.test('the upstream receives forwarding headers, a request id and a trace context', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const response = await request(`${base}/api/echo/h`, {
    headers: {
      'x-request-id': 'client-id-1',
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      'x-forwarded-for': '6.6.6.6',
      'x-real-ip': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'x-forwarded-host': 'evil.example',
      'x-original-url': '/admin',
      'x-http-method-override': 'DELETE',
      'x-forwarded-ssl': 'on',
      'x-forwarded-scheme': 'https',
      'x-forwarded-server': 'evil.example',
      'x-client-ip': '6.6.6.6',
      'x-original-host': 'evil.example',
      'x-host': 'evil.example'
    }
  })
  await response.body.dump()
  t.equal(response.headers['x-request-id'], 'client-id-1', 'a sane client request id is kept and returned')
  const seen = upstream.seen[0]!.headers
  t.equal(seen['x-request-id'], 'client-id-1')
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'replaced, not appended to, from an untrusted peer')
  t.equal(seen['x-forwarded-proto'], 'http')
  t.match(seen['x-forwarded-host'], /^127\.0\.0\.1:\d+$/)
  t.match(seen.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
  for (const name of ['x-real-ip', 'forwarded', 'x-original-url', 'x-http-method-override', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-server', 'x-client-ip', 'x-original-host', 'x-host']) {
    t.equal(seen[name], undefined, `${name} removed`)
  }
})

t.test('an insane request id is replaced by a new one', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))
  const response = await request(`${base}/api/echo/x`, { headers: { 'x-request-id': 'a'.repeat(129) } })
  await response.body.dump()
  const id = response.headers['x-request-id'] as string
  t.not(id, 'a'.repeat(129))
  t.match(id, /^[A-Za-z0-9._:-]{1,128}$/)
  t.equal(upstream.seen[0]!.headers['x-request-id'], id)
})

t.test('gateway errors are JSON of Fastify\'s shape, with the contract\'s headers', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))

  const missing = await request(`${base}/nowhere`)
  t.equal(missing.statusCode, 404)
  t.match(await missing.body.json(), { statusCode: 404, error: 'Not Found', message: String })

  const wrongMethod = await request(`${base}/api/echo/x`, { method: 'DELETE' })
  t.equal(wrongMethod.statusCode, 405)
  t.match(wrongMethod.headers.allow, /GET/)
  t.match(await wrongMethod.body.json(), { statusCode: 405, error: 'Method Not Allowed' })

  // Methods the router does not know (WebDAV's, PURGE) are the route's 405 too, not a 404.
  const propfind = await request(`${base}/api/echo/x`, { method: 'PROPFIND' })
  t.equal(propfind.statusCode, 405, 'PROPFIND on a route listing GET and POST')
  t.equal(propfind.headers.allow, 'GET, HEAD, POST')
  t.match(await propfind.body.json(), { statusCode: 405, error: 'Method Not Allowed' })
  const purge = await request(`${base}/api/open`, { method: 'PURGE' })
  t.equal(purge.statusCode, 405, 'PURGE on a route without a methods list')
  t.match(purge.headers.allow, /^GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS/)
  await purge.body.dump()
  const trace = await request(`${base}/api/echo/x`, { method: 'TRACE' })
  t.equal(trace.statusCode, 405)
  t.equal(trace.headers.allow, 'GET, HEAD, POST', 'TRACE on a route\'s path: that route\'s Allow')
  await trace.body.dump()
  const elsewhere = await request(`${base}/nowhere`, { method: 'PROPFIND' })
  t.equal(elsewhere.statusCode, 404, 'and off every route, still 404')
  await elsewhere.body.dump()

  for (const path of ['/api/open/x', '/nowhere', '/healthz']) {
    const trace = await request(`${base}${path}`, { method: 'TRACE' })
    t.equal(trace.statusCode, 405, `TRACE ${path}`)
    t.ok(trace.headers.allow, 'with Allow')
    await trace.body.dump()
  }
  t.equal(upstream.seen.length, 0, 'nothing reached the upstream')
})

t.test('a body over bodyLimit gets 413 and never reaches the upstream; exactly bodyLimit passes', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))
  const limit = 64 * 1024
  const tooBig = await request(`${base}/api/echo/upload`, { method: 'POST', body: Buffer.alloc(limit + 1), headers: { 'content-type': 'application/octet-stream' } })
  t.equal(tooBig.statusCode, 413)
  t.match(await tooBig.body.json(), { statusCode: 413 })
  t.equal(upstream.seen.length, 0)
  const body = randomBytes(limit)
  const exact = await request(`${base}/api/echo/upload`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
  t.equal(exact.statusCode, 200)
  t.match(await exact.body.json(), { bodyLength: limit, bodySha256: createHash('sha256').update(body).digest('hex') })
})

t.test('security headers, CORS preflight and health endpoints', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))
  const health = await request(`${base}/healthz`)
  t.equal(health.statusCode, 200)
  t.same(await health.body.json(), { status: 'ok' })
  t.equal(health.headers['x-content-type-options'], 'nosniff', 'helmet defaults')

  const ready = await request(`${base}/readyz`)
  t.equal(ready.statusCode, 200)
  await ready.body.dump()

  const preflight = await request(`${base}/api/echo/x`, {
    method: 'OPTIONS',
    headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' }
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'http://localhost:5173')
  t.equal(preflight.headers['access-control-allow-credentials'], 'true')
  await preflight.body.dump()
  t.equal(upstream.seen.length, 0, 'the preflight was answered by the gateway')
})

t.test('a CORS preflight counts under its route; one to a gateway endpoint or no route is not counted as route="*"', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base, logs } = await startGateway(t, publicManifest(upstream))
  for (const path of ['/api/echo/x', '/healthz', '/no/such/route']) {
    const preflight = await request(`${base}${path}`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'GET' } })
    t.equal(preflight.statusCode, 204, path)
    await preflight.body.dump()
  }
  const scrape = await (await request(`${base}/metrics`)).body.text()
  t.match(scrape, /tollgate_requests_total\{route="\/api\/echo",method="OPTIONS",status="204"\} 1/, 'the route\'s preflight, under its route')
  t.notMatch(scrape, /route="\*"/, 'no catch-all label')
  const preflightLines = logs.filter((line) => line.method === 'OPTIONS' && line.msg === 'request completed')
  t.same(preflightLines.filter((line) => Number(line.level) >= 30).map((line) => line.url), ['/api/echo/x'], 'at info, only the route\'s (the gateway\'s own are at debug)')
})

t.test('readiness fails with the failing checks when an upstream has no healthy target', async (t) => {
  const port = await closedPort()
  const { base } = await startGateway(t, {
    version: 1,
    upstreams: { gone: { targets: [`http://127.0.0.1:${port}`], healthCheck: { path: '/health', interval: '50ms', timeout: '50ms', unhealthyAfter: 1 } } },
    routes: [{ prefix: '/gone', upstream: 'gone', auth: false }]
  })
  let ready = await request(`${base}/readyz`)
  for (let i = 0; i < 100 && ready.statusCode === 200; i++) {
    await ready.body.dump()
    await new Promise((resolve) => setTimeout(resolve, 20))
    ready = await request(`${base}/readyz`)
  }
  t.equal(ready.statusCode, 503)
  t.ok(ready.headers['retry-after'])
  t.match(await ready.body.json(), { statusCode: 503, error: 'Service Unavailable', checks: [{ name: 'upstream:gone', ok: false, message: String }] })

  const proxied = await request(`${base}/gone/x`)
  t.equal(proxied.statusCode, 503)
  t.ok(proxied.headers['retry-after'])
  const body = await proxied.body.text()
  t.notMatch(body, String(port), 'the error names no upstream address')
})

t.test('the OpenAPI document lists the gateway\'s routes and no upstream address', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))
  const response = await request(`${base}/docs/json`)
  t.equal(response.statusCode, 200)
  const text = await response.body.text()
  const document = JSON.parse(text) as { openapi: string, paths: Record<string, Record<string, unknown>> }
  t.match(document.openapi, /^3\./)
  t.same(Object.keys(document.paths['/api/echo'] ?? {}).sort(), ['get', 'post'])
  t.ok(document.paths['/api/open/{path}'])
  t.notMatch(text, String(upstream.port))
  const ui = await request(`${base}/docs`, { maxRedirections: 0 } as never)
  t.ok([200, 302].includes(ui.statusCode), 'the UI is served')
  await ui.body.dump()
})

t.test('metrics are exposed and count proxied requests by manifest prefix', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, publicManifest(upstream))
  for (let i = 0; i < 3; i++) await (await request(`${base}/api/echo/item-${i}`)).body.dump()
  const response = await request(`${base}/metrics`)
  t.equal(response.statusCode, 200)
  const text = await response.body.text()
  t.match(text, /tollgate_requests_total\{[^}]*route="\/api\/echo"[^}]*\} 3/)
  t.notMatch(text, /item-1/, 'never the raw path')
  t.notMatch(text, /route="\/healthz"|route="\/metrics"/, 'the gateway\'s own endpoints are not counted')
})

t.test('one info log line per request, with request id, route, method, status and duration', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base, logs } = await startGateway(t, publicManifest(upstream))
  await (await request(`${base}/api/echo/log-me`, { headers: { 'x-request-id': 'log-line-1', authorization: 'Bearer secret-token-value', cookie: 'session=secret-cookie-value' } })).body.dump()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const lines = logs.filter((line) => line.reqId === 'log-line-1')
  t.equal(lines.length, 1, JSON.stringify(lines))
  t.match(lines[0], { level: 30, route: '/api/echo', method: 'GET' })
  const all = JSON.stringify(logs)
  t.notMatch(all, /secret-token-value|secret-cookie-value/, 'credentials never reach a log line')
})

t.test('a refused connection on every target is a 503 with Retry-After, not a crash', async (t) => {
  const port = await closedPort()
  const { base } = await startGateway(t, {
    version: 1,
    upstreams: { gone: { targets: [`http://127.0.0.1:${port}`] } },
    routes: [{ prefix: '/gone', upstream: 'gone', auth: false }]
  })
  for (let i = 0; i < 3; i++) {
    const response = await request(`${base}/gone/x`)
    t.equal(response.statusCode, 503)
    t.ok(response.headers['retry-after'])
    t.notMatch(await response.body.text(), String(port))
  }
})

t.test('an invalid manifest object is refused before anything starts', async (t) => {
  await t.rejects(createGateway({ version: 1, upstreams: {}, routes: [] } as unknown as Manifest), { name: 'ManifestError' })
})

t.test('a route\'s own rateLimit applies without a top-level rateLimit section', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, {
    version: 1,
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [{ prefix: '/limited', upstream: 'echo', auth: false, rateLimit: { max: 2, window: '1m' } }]
  })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) {
    const response = await request(`${base}/limited/x`)
    statuses.push(response.statusCode)
    await response.body.dump()
  }
  t.same(statuses, [200, 200, 429])
  t.equal(upstream.seen.length, 2)
})

t.test('helmet\'s default headers are on every answer, over an upstream\'s own; securityHeaders: false sets none', async (t) => {
  const { default: helmet } = await import('helmet')
  // What helmet itself sets, recorded from a real ServerResponse.
  const expected = await new Promise<Record<string, string>>((resolve) => {
    const server = createServer((req, res) => {
      helmet()(req, res, () => {
        resolve(Object.fromEntries(Object.entries(res.getHeaders()).map(([name, value]) => [name, String(value)])))
        res.end()
      })
    })
    server.listen(0, '127.0.0.1', () => {
      void request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`).then(async (res) => { await res.body.dump(); server.close() })
    })
  })
  t.ok(Object.keys(expected).length >= 10, 'helmet sets its usual dozen headers')

  const own = createServer((_req, res) => { res.setHeader('x-frame-options', 'DENY'); res.setHeader('content-type', 'application/json'); res.end('{}') })
  await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { own.close() })
  const ownUrl = `http://127.0.0.1:${(own.address() as AddressInfo).port}`
  const manifest: Manifest = { version: 1, upstreams: { own: { targets: [ownUrl] } }, routes: [{ prefix: '/api', upstream: 'own', auth: false, methods: ['GET'] }] }
  const { base } = await startGateway(t, manifest)
  for (const [path, status] of [['/api/x', 200], ['/nowhere', 404], ['/healthz', 200]] as const) {
    const res = await request(`${base}${path}`, { method: 'GET' })
    await res.body.dump()
    t.equal(res.statusCode, status)
    for (const [name, value] of Object.entries(expected)) {
      t.equal(res.headers[name], value, `${path}: ${name}`)
    }
  }
  const post = await request(`${base}/api/x`, { method: 'POST' })
  await post.body.dump()
  t.equal(post.statusCode, 405)
  t.equal(post.headers['content-security-policy'], expected['content-security-policy'], 'on the gateway\'s own errors too')

  const { base: bare } = await startGateway(t, { ...manifest, server: { securityHeaders: false } })
  const plain = await request(`${bare}/api/x`)
  await plain.body.dump()
  t.equal(plain.headers['x-frame-options'], 'DENY', 'without them the upstream\'s own header passes')
  t.notOk(plain.headers['content-security-policy'])
  t.notOk(plain.headers['strict-transport-security'])
})
