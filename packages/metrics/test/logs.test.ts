import t, { type Test } from 'tap'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import Fastify, { LogController } from 'fastify'
import { build, type LogCapture } from './helpers/app.js'
import tollgateMetrics, { genReqId, loggerOptions } from '../src/index.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`

t.test('one info line per completed request with id, route, method, status, target, duration and trace id', async (t) => {
  const { app, logs } = build(t)
  app.decorateRequest('tollgateTarget', null)
  app.get('/api/posts/*', { config: { tollgate: { route: '/api/posts' } } }, async (request) => {
    (request as unknown as { tollgateTarget: string }).tollgateTarget = 'http://127.0.0.1:3002'
    return { ok: true }
  })
  app.get('/plain', async () => 'ok')
  await app.ready()

  const res = await app.inject({ url: '/api/posts/42?page=2', headers: { traceparent: TRACEPARENT, 'x-request-id': 'client-req-1' } })
  t.equal(res.statusCode, 200)
  await app.inject({ url: '/plain', headers: { traceparent: 'not-a-traceparent' } })

  const lines = logs.requestLines()
  t.equal(lines.length, 2, 'exactly one line per request')
  t.match(lines[0], {
    level: 30,
    reqId: 'client-req-1',
    route: '/api/posts',
    method: 'GET',
    url: '/api/posts/42?page=2',
    ip: '127.0.0.1',
    statusCode: 200,
    target: 'http://127.0.0.1:3002',
    traceId: TRACE_ID,
    msg: 'request completed'
  })
  t.notOk('aborted' in lines[0]!)
  t.type(lines[0]!.responseTime, 'number')
  t.ok((lines[0]!.responseTime as number) >= 0)
  t.match(lines[1], { level: 30, route: '/plain', statusCode: 200 })
  t.notOk('traceId' in lines[1]!, 'an invalid traceparent gives no trace id')
  t.notOk('target' in lines[1]!, 'no target when no proxy set one')
  t.equal(logs.lines.filter((line) => line.msg === 'incoming request').length, 0, 'no separate incoming-request line')
})

t.test('a 404 and a thrown error each log one line, the error attached and the route unmatched', async (t) => {
  const { app, logs } = build(t)
  app.get('/boom', async () => { throw new Error('kaput') })
  await app.ready()
  await app.inject('/missing/thing')
  await app.inject('/boom')
  const lines = logs.requestLines()
  t.equal(lines.length, 2)
  t.match(lines[0], { level: 30, route: 'unmatched', statusCode: 404, url: '/missing/thing' })
  t.match(lines[1], { level: 30, route: '/boom', statusCode: 500, err: { type: 'Error', message: 'kaput' } })
})

t.test('routes with config.metrics false log their line at debug only', async (t) => {
  const info = build(t)
  info.app.get('/healthz', { config: { metrics: false } }, async () => 'ok')
  await info.app.ready()
  await info.app.inject('/healthz')
  await info.app.inject('/metrics')
  t.equal(info.logs.requestLines().length, 0, 'nothing at info')

  const debug = build(t, {}, { level: 'debug' })
  debug.app.get('/healthz', { config: { metrics: false } }, async () => 'ok')
  await debug.app.ready()
  await debug.app.inject('/healthz')
  await debug.app.inject('/metrics')
  const lines = debug.logs.requestLines()
  t.equal(lines.length, 2)
  t.match(lines, [{ level: 20, route: '/healthz' }, { level: 20, route: '/metrics' }])
})

t.test('requestLogs: false writes no request line but still counts', async (t) => {
  const { app, logs } = build(t, { requestLogs: false })
  app.get('/x', async () => 'ok')
  await app.ready()
  await app.inject('/x')
  t.equal(logs.requestLines().length, 0)
  t.match((await app.inject('/metrics')).body, /tollgate_requests_total\{route="\/x",method="GET",status="200"\} 1/)
})

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlci00MiJ9.c2lnbmF0dXJlLXNlY3JldC1ieXRlcw'
const OPAQUE = 'opaque-bearer-7f3a9c1d2e'
const API_KEY = 'partner-key-9d8c7b6a5f'
const COOKIE = 'sid=cookie-secret-1a2b3c4d'
const QUERY_TOKEN = 'query-token-5e6f7a8b'
const QUERY_KEY = 'query-apikey-0c1d2e3f'
const SECRETS = [TOKEN, OPAQUE, API_KEY, 'cookie-secret-1a2b3c4d', QUERY_TOKEN, QUERY_KEY]

function assertNoSecret (t: Test, logs: LogCapture): void {
  t.ok(logs.raw.length > 0, 'something was logged')
  for (const secret of SECRETS) t.notOk(logs.text.includes(secret), `the log never contains ${secret.slice(0, 12)}...`)
}

t.test('credentials never reach a log line: headers, query tokens, error messages and stacks', async (t) => {
  const { app, logs } = build(t, {}, { apiKeyHeader: 'x-partner-key' })
  app.get('/boom', async (request) => {
    // A careless upstream or library error that quotes what it was given.
    throw new Error(`upstream refused Bearer ${OPAQUE} for ${request.url} with key=${String(request.headers['x-partner-key'])} token ${TOKEN}`)
  })
  app.get('/careless', async (request) => {
    // Someone logs whole header objects and credential fields anyway.
    request.log.info({ headers: request.headers, req: request, apiKey: API_KEY, token: TOKEN }, `looked at ${request.url}`)
    return 'ok'
  })
  // What a gateway's error handler does (this plugin never sets one).
  app.setErrorHandler(async (error, request, reply) => {
    request.log.error({ err: error, req: request }, (error as Error).message)
    return await reply.code(500).send({ statusCode: 500, error: 'Internal Server Error', message: 'upstream failed' })
  })
  await app.ready()

  const headers = {
    authorization: `Bearer ${TOKEN}`,
    cookie: COOKIE,
    'x-partner-key': API_KEY
  }
  const query = `?access_token=${QUERY_TOKEN}&api_key=${QUERY_KEY}&page=1`
  for (const url of ['/boom', '/careless', '/missing']) {
    const res = await app.inject({ url: url + query, headers })
    // (Fastify's default not-found message quotes the URL: the gateway's not-found handler must not.)
    if (url !== '/missing') for (const secret of SECRETS) t.notOk(res.body.includes(secret), `nor does the ${url} response`)
  }
  const res = await app.inject({ url: '/careless', headers: { authorization: `Bearer ${OPAQUE}`, 'x-partner-key': API_KEY } })
  t.equal(res.statusCode, 200)

  assertNoSecret(t, logs)
  const lines = logs.requestLines()
  t.equal(lines.length, 4)
  t.equal(lines[0]!.url, '/boom?access_token=[Redacted]&api_key=[Redacted]&page=1', 'the url keeps its shape')
  const careless = logs.lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('looked at'))
  t.match(careless, { headers: { authorization: '[Redacted]', cookie: '[Redacted]', 'x-partner-key': '[Redacted]' }, apiKey: '[Redacted]', token: '[Redacted]' })
  t.notOk('headers' in (careless!.req as object), 'the req serializer never dumps headers')
  const errorLine = logs.lines.find((line) => line.level === 50)
  t.match(errorLine, { err: { message: /Bearer \[Redacted\]/ }, req: { url: /access_token=\[Redacted\]/ } })
})

t.test('the redaction also holds with Fastify\'s own request logging left on', async (t) => {
  const logs = (await import('./helpers/app.js')).LogCapture
  const capture = new logs()
  const app = Fastify({ logger: { ...loggerOptions({ level: 'info' }), stream: capture }, genReqId, requestIdHeader: false })
  t.teardown(async () => { await app.close() })
  await app.register(tollgateMetrics)
  app.get('/boom', async () => { throw Object.assign(new Error(`bad token=${QUERY_TOKEN}`), { headers: { authorization: `Bearer ${TOKEN}` } }) })
  await app.ready()
  const query = `?token=${QUERY_TOKEN}&apikey=${QUERY_KEY}`
  await app.inject({ url: `/missing${query}`, headers: { authorization: `Bearer ${OPAQUE}`, cookie: COOKIE, 'x-api-key': API_KEY } })
  await app.inject({ url: `/boom${query}`, headers: { authorization: `Bearer ${TOKEN}`, 'x-api-key': API_KEY } })
  // Fastify's own lines: incoming request, not found (message holds the url), request errored...
  t.ok(capture.lines.some((line) => line.msg === 'incoming request'))
  t.ok(capture.lines.some((line) => typeof line.msg === 'string' && line.msg.includes('not found')))
  t.ok(capture.lines.some((line) => typeof line.msg === 'string' && line.msg.includes('requestLogs is on')), 'the plugin warns about duplicate lines')
  assertNoSecret(t, capture)
})

t.test('request ids: a sane client id is kept and echoed, anything else replaced', async (t) => {
  const { app, logs } = build(t)
  app.get('/ok', async () => 'ok')
  app.get('/boom', async () => { throw new Error('x') })
  app.get('/denied', {
    onRequest: async (_request, reply) => {
      void reply.header('www-authenticate', 'Bearer realm="tollgate"')
      throw Object.assign(new Error('no credentials'), { statusCode: 401 })
    }
  }, async () => 'never')
  await app.ready()

  const sane = 'Abc.123_x:y-z'
  t.equal((await app.inject({ url: '/ok', headers: { 'x-request-id': sane } })).headers['x-request-id'], sane)
  const max = 'a'.repeat(128)
  t.equal((await app.inject({ url: '/ok', headers: { 'x-request-id': max } })).headers['x-request-id'], max)

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
  for (const bad of ['a'.repeat(129), 'has space', 'slash/inside', 'new\u00e9', '']) {
    const res = await app.inject({ url: '/ok', headers: { 'x-request-id': bad } })
    t.match(res.headers['x-request-id'], UUID, `${JSON.stringify(bad.slice(0, 20))} is replaced`)
  }
  t.match((await app.inject('/ok')).headers['x-request-id'], UUID, 'made when absent')

  for (const url of ['/missing', '/boom', '/denied']) {
    const res = await app.inject({ url, headers: { 'x-request-id': `id-for${url.replace('/', '-')}` } })
    t.equal(res.headers['x-request-id'], `id-for${url.replace('/', '-')}`, `echoed on ${res.statusCode}`)
  }
  const ids = logs.requestLines().map((line) => line.reqId)
  t.ok(ids.includes('id-for-missing') && ids.includes('id-for-boom') && ids.includes('id-for-denied'), 'the log line carries the same id')
  t.equal(new Set(ids).size, ids.length, 'every request got its own id')
})

t.test('the echo header can be renamed or turned off', async (t) => {
  const renamed = build(t, { requestIdHeader: 'X-Correlation-Id' })
  await renamed.app.ready()
  const res = await renamed.app.inject({ url: '/metrics', headers: { 'x-request-id': 'abc' } })
  t.equal(res.headers['x-correlation-id'], 'abc')
  t.notOk('x-request-id' in res.headers)

  const off = build(t, { requestIdHeader: false })
  await off.app.ready()
  const quiet = await off.app.inject({ url: '/metrics', headers: { 'x-request-id': 'abc' } })
  t.notOk('x-request-id' in quiet.headers)
})

t.test('the legacy disableRequestLogging option is honoured too', async (t) => {
  const logs = new (await import('./helpers/app.js')).LogCapture()
  const app = Fastify({ logger: { ...loggerOptions(), stream: logs }, genReqId, requestIdHeader: false, disableRequestLogging: true })
  t.teardown(async () => { await app.close() })
  await app.register(tollgateMetrics)
  await app.ready()
  await app.inject('/nope')
  t.equal(logs.lines.length, 1, 'only the plugin\'s line, and no warning')
  t.match(logs.lines[0], { msg: 'request completed', statusCode: 404 })
  t.ok(LogController)
})

t.test('a request whose client goes away first logs one line (499, aborted) and counts as a 499', async (t) => {
  const { app, logs } = build(t)
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  app.get('/slow', async () => { await gate; return 'late' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
      setTimeout(() => { socket.destroy(); resolve() }, 100)
    })
    socket.on('error', reject)
  })
  for (let i = 0; i < 100 && logs.requestLines().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  release() // the handler answers after all: no second line, no second count
  await new Promise((resolve) => setTimeout(resolve, 100))

  const lines = logs.requestLines()
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], { level: 30, route: '/slow', method: 'GET', statusCode: 499, aborted: true })
  t.type(lines[0]!.responseTime, 'number')
  const scrape = await app.tollgateMetrics.scrape()
  t.match(scrape, /tollgate_requests_total\{route="\/slow",method="GET",status="499"\} 1/)
  t.notMatch(scrape, /tollgate_requests_total\{route="\/slow",method="GET",status="200"\}/)
})

t.test('recordHijacked: a hijacked reply (a WebSocket tunnel) logs and counts once, when the caller says it is over', async (t) => {
  const { app, logs } = build(t)
  const done: Array<() => void> = []
  app.get('/tunnel', (request, reply) => {
    // As @tollgate/proxy does with a tunnel: the reply is hijacked, its raw response never finishes.
    reply.hijack()
    reply.code(101)
    request.raw.socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n')
    done.push(() => {
      app.tollgateMetrics.recordHijacked(request, reply)
      app.tollgateMetrics.recordHijacked(request, reply) // a second call changes nothing
      request.raw.socket.destroy()
    })
  })
  app.get('/gone', (request, reply) => {
    reply.hijack()
    app.tollgateMetrics.recordHijacked(request, reply, true)
    request.raw.socket.destroy()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const exchange = (path: string): Promise<string> => new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => { socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`) })
    let received = ''
    socket.on('data', (chunk) => { received += chunk.toString() })
    socket.on('close', () => { resolve(received) })
    socket.on('error', reject)
  })
  const tunnel = exchange('/tunnel')
  for (let i = 0; i < 100 && done.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(logs.requestLines().length, 0, 'no line while the exchange goes on')
  done[0]!()
  t.match(await tunnel, /^HTTP\/1\.1 101 /)
  await exchange('/gone')

  const lines = logs.requestLines()
  t.equal(lines.length, 2, 'one line each')
  t.match(lines[0], { level: 30, route: '/tunnel', method: 'GET', statusCode: 101 })
  t.notOk('aborted' in lines[0]!)
  t.type(lines[0]!.responseTime, 'number')
  t.match(lines[1], { route: '/gone', statusCode: 499, aborted: true })
  const scrape = await app.tollgateMetrics.scrape()
  t.match(scrape, /tollgate_requests_total\{route="\/tunnel",method="GET",status="101"\} 1\n/)
  t.match(scrape, /tollgate_request_duration_seconds_count\{route="\/tunnel",method="GET",status="101"\} 1\n/)
  t.match(scrape, /tollgate_requests_total\{route="\/gone",method="GET",status="499"\} 1\n/)
})
