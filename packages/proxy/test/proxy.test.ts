import t from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { tollgateRuntime, type TollgateEventMap } from '@tollgate/common'
import tollgateProxy, { errors } from '../src/index.js'
import { closedPort, echo, gateway, listen, rawRequest, rawUpstream, upstream } from './helpers/servers.js'

t.test('the path has its prefix rewritten and the query string arrives byte for byte', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [posts.url] } },
    routes: [
      { prefix: '/api/posts', upstream: 'posts', rewritePrefix: '/v1/posts' },
      { prefix: '/strip', upstream: 'posts' }
    ]
  })
  const cases: Array<[string, string]> = [
    ['/api/posts', '/v1/posts'],
    ['/api/posts/', '/v1/posts/'],
    ['/api/posts/1/comments?b=2&a=%20x&a=%zz&&c', '/v1/posts/1/comments?b=2&a=%20x&a=%zz&&c'],
    ['/api/posts?x=../../admin', '/v1/posts?x=../../admin'],
    ['/strip', '/'],
    ['/strip?q=1', '/?q=1'],
    ['/strip/a/b', '/a/b']
  ]
  for (const [sent, expected] of cases) {
    const res = await app.inject({ url: sent })
    t.equal(res.statusCode, 200, sent)
    t.equal(res.json().url, expected, `${sent} -> ${expected}`)
  }
})

t.test('a prefix matches itself and its sub-paths only, never /prefixfoo', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api/posts', upstream: 'posts' }] })
  t.equal((await app.inject({ url: '/api/postsfoo' })).statusCode, 404)
  t.equal((await app.inject({ url: '/api/post' })).statusCode, 404)
  t.equal((await app.inject({ url: '/api/posts/x' })).statusCode, 200)
  t.equal(posts.hits, 1)
})

t.test('the upstream gets forwarding headers, the request id and a traceparent, and never hop-by-hop headers', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({
    url: '/api/x',
    headers: {
      host: 'gateway.example:8443',
      'x-forwarded-for': '6.6.6.6',
      'x-request-id': 'spoofed',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      connection: 'keep-alive, x-secret-hop',
      'x-secret-hop': 'drop me',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic abc',
      te: 'trailers',
      upgrade: 'h2c',
      'x-kept': 'yes'
    }
  })
  t.equal(res.statusCode, 200)
  const seen = posts.seen[0]!
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'replaced by the client ip, not appended')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-host'], 'gateway.example:8443')
  t.equal(seen.headers.host, new URL(posts.url).host, 'the target host')
  t.not(seen.headers['x-request-id'], 'spoofed', 'the request id is the gateway request.id')
  t.match(seen.headers.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/, 'trace id kept')
  t.not(seen.headers.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'with the gateway span as parent')
  t.equal(seen.headers['x-kept'], 'yes')
  for (const name of ['x-secret-hop', 'keep-alive', 'proxy-authorization', 'te', 'upgrade']) {
    t.equal(seen.headers[name], undefined, `${name} removed`)
  }
  t.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'x-forwarded-for').length, 1, 'one x-forwarded-for')
})

t.test('an invalid traceparent is replaced by a new trace', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  await app.inject({ url: '/api/x', headers: { traceparent: 'garbage', tracestate: 'vendor=stale' } })
  await app.inject({ url: '/api/x', headers: { tracestate: 'vendor=orphan' } })
  await app.inject({ url: '/api/x', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=kept' } })
  for (const seen of posts.seen) t.match(seen.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  t.equal(posts.seen[0]!.headers.tracestate, undefined, 'a new trace starts without the old vendor state (W3C)')
  t.equal(posts.seen[1]!.headers.tracestate, undefined, 'nor one sent without a traceparent')
  t.equal(posts.seen[2]!.headers.tracestate, 'vendor=kept', 'a continued trace keeps it')
})

t.test('hop-by-hop and Connection-named headers of the upstream response are dropped', async (t) => {
  const posts = await upstream(t, (_req, res) => {
    res.setHeader('connection', 'x-internal')
    res.setHeader('x-internal', 'secret')
    res.setHeader('keep-alive', 'timeout=99')
    res.setHeader('proxy-authenticate', 'Basic')
    res.setHeader('set-cookie', ['a=1', 'b=2'])
    res.setHeader('x-public', 'caf\u00e9')
    res.end('ok')
  })
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({ url: '/api' })
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'ok')
  t.equal(res.headers['x-internal'], undefined)
  t.equal(res.headers['keep-alive'], undefined)
  t.equal(res.headers['proxy-authenticate'], undefined)
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'])
  const base = await listen(app)
  const raw = await rawRequest(base, 'GET /api HTTP/1.1\r\nhost: x')
  t.ok(raw.raw.includes(Buffer.from('x-public: caf\u00e9\r\n').toString('latin1')), 'a UTF-8 header value arrives byte for byte')
})

t.test('upstream header names in any case: hop-by-hop and Connection-named ones dropped, repeats kept in order, gateway headers win', async (t) => {
  const raw = await rawUpstream(t, (socket) => {
    socket.end([
      'HTTP/1.1 200 OK',
      'Content-Type: text/plain',
      'CONNECTION: X-Internal, close',
      'x-INTERNAL: secret',
      'Keep-Alive: timeout=99',
      'Proxy-Authenticate: Basic',
      'Set-Cookie: a=1',
      'set-cookie: b=2',
      'X-Repeat: one',
      'x-repeat: two',
      'X-Gateway: from-upstream',
      'X-REPEAT: three',
      'x-gateway: again',
      'Content-Length: 2',
      '',
      'ok'
    ].join('\r\n'))
  })
  const app = Fastify()
  app.addHook('onRequest', async (_request, reply) => { reply.header('x-gateway', 'gateway') })
  await app.register(tollgateProxy, { healthChecks: false, upstreams: { posts: { targets: [raw.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  t.teardown(async () => { await app.close() })
  const res = await app.inject({ url: '/api' })
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'ok')
  t.equal(res.headers['content-type'], 'text/plain')
  t.equal(res.headers['x-internal'], undefined, 'named by a Connection header in capitals')
  t.equal(res.headers['keep-alive'], undefined)
  t.equal(res.headers['proxy-authenticate'], undefined)
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'])
  t.same(res.headers['x-repeat'], ['one', 'two', 'three'], 'repeats of a name in any case are relayed, in order')
  t.equal(res.headers['x-gateway'], 'gateway', 'a header the gateway set wins over the upstream\'s')
})

t.test('upstream statuses, including 5xx, are relayed as they are', async (t) => {
  const posts = await upstream(t, (req, res) => {
    const status = Number(req.url!.slice(1))
    res.writeHead(status, { 'content-type': 'text/plain' })
    res.end(status === 204 || status === 304 ? undefined : `status ${status}`)
  })
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/', upstream: 'posts' }] })
  for (const status of [200, 201, 204, 301, 304, 404, 500, 502, 503]) {
    const res = await app.inject({ url: `/${status}` })
    t.equal(res.statusCode, status)
    if (status !== 204 && status !== 304) t.equal(res.body, `status ${status}`)
  }
  const redirect = await app.inject({ url: '/302' })
  t.equal(redirect.statusCode, 302, 'redirects are relayed, never followed')
})

t.test('methods: unlisted methods get 405 with Allow, GET implies HEAD', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts', methods: ['get', 'POST'] }] })
  const head = await app.inject({ method: 'HEAD', url: '/api/x' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')
  t.equal(posts.seen.at(-1)!.method, 'HEAD')
  for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const) {
    const res = await app.inject({ method, url: '/api/x' })
    t.equal(res.statusCode, 405, method)
    t.equal(res.headers.allow, 'GET, HEAD, POST')
    t.equal(res.json().code, 'TOLLGATE_PROXY_METHOD_NOT_ALLOWED')
  }
  t.equal(posts.hits, 1)
  const post = await app.inject({ method: 'POST', url: '/api/x', payload: 'hi' })
  t.equal(post.statusCode, 200)
  t.equal(post.json().method, 'POST')
})

t.test('a path that is not in normal form gets 400 before any other route hook', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await rawRequest(await listen(app), 'GET /api/a/%2e%2e/b HTTP/1.1\r\nhost: x')
  t.equal(res.status, 400)
  t.match(res.raw, /TOLLGATE_PROXY_BAD_PATH/)
  t.equal(posts.hits, 0)
})

t.test("the proxy's onRequest hook runs before hooks other plugins add in onRoute", async (t) => {
  const posts = await upstream(t)
  const order: string[] = []
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(fp(async (fastify) => {
    fastify.addHook('onRoute', (route) => {
      const hook = async (): Promise<void> => { order.push('other') }
      const existing = route.onRequest
      route.onRequest = existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook]
    })
  }, { name: 'other-plugin' }))
  await app.register(tollgateProxy, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts', methods: ['GET'] }], healthChecks: false })
  app.addHook('onError', async () => { order.push('error') })
  const bad = await rawRequest(await listen(app), 'GET /api/../x HTTP/1.1\r\nhost: x')
  t.equal(bad.status, 400)
  t.same(order, ['error'], 'the other hook never ran for a bad path')
  order.length = 0
  const denied = await app.inject({ method: 'DELETE', url: '/api/x' })
  t.equal(denied.statusCode, 405)
  t.same(order, ['error'], 'nor for a refused method')
  order.length = 0
  const ok = await app.inject({ url: '/api/x' })
  t.equal(ok.statusCode, 200)
  t.same(order, ['other'], 'and it runs for a good request')
})

t.test('route config is merged into each Fastify route with the tollgate labels', async (t) => {
  const posts = await upstream(t)
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  const configs: Array<{ url: string, config: unknown }> = []
  app.addHook('onRoute', (route) => { configs.push({ url: route.url, config: route.config }) })
  await app.register(tollgateProxy, {
    upstreams: { posts: { targets: [posts.url] } },
    routes: [{ prefix: '/api/posts', upstream: 'posts', config: { auth: { roles: ['user'] }, stripCredentials: true } }],
    healthChecks: false
  })
  await app.ready()
  t.same(configs.map((c) => c.url).sort(), ['/api/posts', '/api/posts/*'])
  for (const { config } of configs) {
    t.match(config, { auth: { roles: ['user'] }, stripCredentials: true, tollgate: { route: '/api/posts', upstream: 'posts' } })
  }
})

t.test('the proxy content-type parser does not leak into the rest of the app', async (t) => {
  const posts = await upstream(t)
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tollgateProxy, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }], healthChecks: false })
  app.post('/local', async (request) => ({ got: request.body }))
  const local = await app.inject({ method: 'POST', url: '/local', payload: { a: 1 } })
  t.same(local.json(), { got: { a: 1 } }, 'JSON still parsed outside the proxy')
  const odd = await app.inject({ method: 'POST', url: '/local', headers: { 'content-type': 'application/x-odd' }, payload: 'x' })
  t.equal(odd.statusCode, 415, 'unknown content types still refused outside the proxy')
  const proxied = await app.inject({ method: 'POST', url: '/api', headers: { 'content-type': 'application/x-odd' }, payload: 'x' })
  t.equal(proxied.statusCode, 200, 'and streamed through by the proxy')
  t.equal(posts.seen[0]!.body.toString(), 'x')
})

t.test('connection refused: 503 with Retry-After, no upstream address in the body, the process survives', async (t) => {
  const dead = await closedPort()
  const app = await gateway(t, { upstreams: { posts: { targets: [dead] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  for (const method of ['GET', 'POST'] as const) {
    const res = await app.inject({ method, url: '/api/x', ...(method === 'POST' ? { payload: 'body' } : {}) })
    t.equal(res.statusCode, 503)
    t.match(res.headers['retry-after'], /^\d+$/)
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
    t.equal(res.json().code, 'TOLLGATE_PROXY_UPSTREAM_UNAVAILABLE')
    t.notMatch(res.body, /127\.0\.0\.1|ECONNREFUSED|:\d{4,5}/)
  }
})

t.test('a reset before the response headers is a 502', async (t) => {
  const raw = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const app = await gateway(t, { upstreams: { posts: { targets: [raw.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({ url: '/api/x' })
  t.equal(res.statusCode, 502)
  t.equal(res.json().code, 'TOLLGATE_PROXY_BAD_GATEWAY')
  t.notMatch(res.body, /127\.0\.0\.1/)
})

t.test('a close before the response headers is a 502', async (t) => {
  const raw = await rawUpstream(t, (socket) => { socket.end() })
  const app = await gateway(t, { upstreams: { posts: { targets: [raw.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  t.equal((await app.inject({ url: '/api/x' })).statusCode, 502)
})

t.test('garbage instead of HTTP is a 502', async (t) => {
  const raw = await rawUpstream(t, (socket) => { socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\nnot http at all\r\n') })
  const app = await gateway(t, { upstreams: { posts: { targets: [raw.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({ url: '/api/x' })
  t.equal(res.statusCode, 502)
  t.notMatch(res.body, /127\.0\.0\.1|HPE_/)
})

t.test('an impossible status code is a 502', async (t) => {
  const raw = await rawUpstream(t, (socket) => { socket.end('HTTP/1.1 999 Nope\r\ncontent-length: 0\r\n\r\n') })
  const app = await gateway(t, { upstreams: { posts: { targets: [raw.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  t.equal((await app.inject({ url: '/api/x' })).statusCode, 502)
})

t.test('no response headers within timeout is a 504', async (t) => {
  const raw = await rawUpstream(t, () => { /* never answers */ })
  const app = await gateway(t, { upstreams: { posts: { targets: [raw.url], timeout: '100ms', retries: 2 } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({ url: '/api/x' })
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'TOLLGATE_PROXY_GATEWAY_TIMEOUT')
  t.equal(raw.connections(), 1, 'a timeout is never retried')
})

t.test('request.tollgateTarget and the upstreamResponse event name the target', async (t) => {
  const posts = await upstream(t)
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  const events: Array<TollgateEventMap['upstreamResponse']> = []
  tollgateRuntime(app).events.on('upstreamResponse', (event) => { events.push(event) })
  let target: string | null | undefined
  app.addHook('onResponse', async (request) => { target = request.tollgateTarget })
  await app.register(tollgateProxy, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }], healthChecks: false })
  app.get('/local', async (request) => ({ target: request.tollgateTarget }))
  await app.inject({ url: '/api/x' })
  t.equal(target, posts.url)
  t.equal(events.length, 1)
  t.match(events[0], { upstream: 'posts', target: posts.url, status: 200 })
  t.ok(events[0]!.seconds >= 0)
  t.same((await app.inject({ url: '/local' })).json(), { target: null }, 'null on routes the proxy does not serve')
})

t.test('the runtime is shared with plugins registered before and after', async (t) => {
  const posts = await upstream(t)
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  const before = tollgateRuntime(app)
  await app.register(tollgateProxy, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }], healthChecks: false })
  await app.ready()
  t.equal(app.tollgate, before)
  const checks = await app.tollgate.checkReadiness()
  t.same(checks, [{ name: 'upstream:posts', ok: true }])
})

t.test('a bad option fails app.ready() with a message naming the option', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ upstreams: {}, routes: [] }, /^upstreams: /],
    [{ upstreams: { posts: { targets: [] } }, routes: [] }, /^upstreams\.posts\.targets: /],
    [{ upstreams: { posts: { targets: ['ftp://x'] } }, routes: [] }, /^upstreams\.posts\.targets\[0\]: /],
    [{ upstreams: { posts: { targets: ['http://x/base'] } }, routes: [] }, /^upstreams\.posts\.targets\[0\]: .*origin/],
    [{ upstreams: { posts: { targets: [{ url: 'http://x', weight: 0 }] } }, routes: [] }, /^upstreams\.posts\.targets\[0\]\.weight: /],
    [{ upstreams: { posts: { targets: ['http://x'], retries: -1 } }, routes: [] }, /^upstreams\.posts\.retries: /],
    [{ upstreams: { posts: { targets: ['http://x'], timeout: 'soon' } }, routes: [] }, /^upstreams\.posts\.timeout: /],
    [{ upstreams: { posts: { targets: ['http://x'], balance: 'fastest' } }, routes: [] }, /^upstreams\.posts\.balance: /],
    [{ upstreams: { posts: { targets: ['http://x'], healthCheck: { path: 'health' } } }, routes: [] }, /^upstreams\.posts\.healthCheck\.path: /],
    [{ upstreams: { posts: { targets: ['http://x'], circuitBreaker: { failures: 0 } } }, routes: [] }, /^upstreams\.posts\.circuitBreaker\.failures: /],
    [{ upstreams: { posts: { targets: ['http://x'], typo: 1 } }, routes: [] }, /^upstreams\.posts\.typo: unknown key/],
    [{ upstreams: { posts: { targets: ['http://x'] } }, routes: [{ prefix: '/a', upstream: 'post' }] }, /^routes\[0\]\.upstream: unknown upstream "post" \(known: posts\)/],
    [{ upstreams: { posts: { targets: ['http://x'] } }, routes: [{ prefix: 'a', upstream: 'posts' }] }, /^routes\[0\]\.prefix: /],
    [{ upstreams: { posts: { targets: ['http://x'] } }, routes: [{ prefix: '/a/:id', upstream: 'posts' }] }, /^routes\[0\]\.prefix: /],
    [{ upstreams: { posts: { targets: ['http://x'] } }, routes: [{ prefix: '/a/../b', upstream: 'posts' }] }, /^routes\[0\]\.prefix: /],
    [{ upstreams: { posts: { targets: ['http://x'] } }, routes: [{ prefix: '/a', upstream: 'posts', methods: ['TRACE'] }] }, /^routes\[0\]\.methods\[0\]: /],
    [{ upstreams: { posts: { targets: ['http://x'] } }, routes: [{ prefix: '/a', upstream: 'posts' }, { prefix: '/a/', upstream: 'posts' }] }, /^routes\[1\]\.prefix: duplicate/],
    [{ upstreams: { posts: { targets: ['http://x'] } }, routes: [], bodyLimit: 'lots' }, /^bodyLimit: /]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    void app.register(tollgateProxy, options as never)
    const error = await app.ready().then(() => null, (err: unknown) => err)
    t.ok(error instanceof errors.InvalidOptionError, `refused: ${String(message)}`)
    t.match((error as Error).message, message)
    await app.close()
  }
})

t.test('echo helper sanity: a plain GET through the proxy answers the upstream JSON', async (t) => {
  const posts = await upstream(t, echo)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({ url: '/api/hello' })
  t.equal(res.headers['content-type'], 'application/json')
  t.equal(res.json().url, '/hello')
})
