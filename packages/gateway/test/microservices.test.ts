import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createGateway, type Manifest } from '../src/index.js'
import { manifestProblems } from '../src/manifest/validate.js'
import { routeTable } from '../src/routes-table.js'
import { openApiDocument } from '../src/openapi.js'

// The NestJS microservice fixture of @tollgate/microservices (a real NestJS TCP server).
const SERVICE = fileURLToPath(new URL('../../microservices/test/fixtures/service.mjs', import.meta.url))
const API_KEY = 'gateway-microservices-key'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

async function nestTcpService (t: Test): Promise<{ port: number, ns: string }> {
  const port = await freePort()
  const ns = `gw${randomBytes(3).toString('hex')}.`
  const child = spawn(process.execPath, [SERVICE], { env: { ...process.env, SERVICE: JSON.stringify({ transport: 'tcp', port, ns }) }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('service did not start')) }, 30_000)
    child.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) { clearTimeout(timer); resolve() } })
  })
  return { port, ns }
}

function manifestFor (port: number, ns: string): Manifest {
  return {
    version: 1,
    server: { securityHeaders: false },
    rateLimit: { algorithm: 'fixed-window' },
    auth: { apiKeys: { keys: [{ id: 'partner', sha256: createHash('sha256').update(API_KEY).digest('hex'), roles: ['partner'] }] } },
    upstreams: {
      users: { transport: 'nest-tcp', targets: [`tcp://127.0.0.1:${port}`], timeout: '10s' }
    },
    routes: [{
      prefix: '/api/users',
      upstream: 'users',
      auth: { methods: ['apiKey'], roles: ['partner'] },
      rateLimit: { max: 3, window: '1m', by: 'apiKey' },
      patterns: [
        { method: 'GET', path: '/:id', pattern: `${ns}get_user` },
        { method: 'POST', path: '/', event: `${ns}user_created` },
        { method: 'PUT', path: '/:id', pattern: `${ns}echo`, data: 'envelope' }
      ]
    }]
  } as Manifest
}

t.test('a route with patterns goes through auth, rate limits and metrics, then to the NestJS service', async (t) => {
  const { port, ns } = await nestTcpService(t)
  const app = await createGateway(manifestFor(port, ns), { logLevel: 'silent' })
  t.teardown(async () => { await app.close() })

  t.equal((await app.inject({ url: '/api/users/7' })).statusCode, 401, 'authentication applies')
  const headers = { 'x-api-key': API_KEY }
  const res = await app.inject({ url: '/api/users/7', headers })
  t.equal(res.statusCode, 200)
  t.equal(res.json().name, 'user 7')
  t.equal(res.headers['ratelimit-limit'], '3', 'the route\'s rate limit applies')
  const envelope = await app.inject({ method: 'PUT', url: '/api/users/8', headers, payload: { a: 1 } })
  t.equal(envelope.json().identity.id, 'partner', 'the envelope carries the authenticated identity')
  t.same(envelope.json().body, { a: 1 })
  t.equal((await app.inject({ method: 'POST', url: '/api/users', headers, payload: { n: 1 } })).statusCode, 202)
  const limited = await app.inject({ url: '/api/users/7', headers })
  t.equal(limited.statusCode, 429)

  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /tollgate_requests_total\{route="\/api\/users",method="GET",status="200"\} 1/)
  t.match(metrics, new RegExp(`tollgate_upstream_duration_seconds_count\\{upstream="users",target="tcp://127.0.0.1:${port}",status="200"\\} 2`), 'the GET and the PUT')
  t.match(metrics, new RegExp(`tollgate_upstream_duration_seconds_count\\{upstream="users",target="tcp://127.0.0.1:${port}",status="202"\\} 1`))

  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json().checks, [{ name: 'upstream:users', ok: true }])

  const docs = (await app.inject({ url: '/docs/json' })).json()
  t.ok(docs.paths['/api/users/{id}'].get, 'the pattern routes are in the OpenAPI document')
  t.ok(docs.paths['/api/users'].post.responses['202'])
  t.notOk(docs.paths['/api/users/{path}'], 'no prefix-wide proxy entry')
  t.notMatch(JSON.stringify(docs), String(port), 'no upstream address')
})

t.test('the route table lists each mapped method and path with its pattern', async (t) => {
  const table = routeTable(manifestFor(3999, 'x.'))
  t.match(table, /\/api\/users\/:id => x\.get_user\s+GET\s+users \(nest-tcp\)\s+tcp:\/\/127\.0\.0\.1:3999\s+apiKey roles:partner\s+3\/1m by apiKey/)
  t.match(table, /\/api\/users => event x\.user_created\s+POST/)
  const doc = openApiDocument(manifestFor(3999, 'x.'), '0.0.0') as { paths: Record<string, Record<string, unknown>> }
  t.same(Object.keys(doc.paths).sort(), ['/api/users', '/api/users/{id}'])
  t.same(Object.keys(doc.paths['/api/users/{id}']!).sort(), ['get', 'put'])
})

t.test('transports and patterns are validated with path: message', async (t) => {
  const manifest = {
    version: 1,
    upstreams: {
      web: { targets: ['http://127.0.0.1:3000'] },
      users: { transport: 'nest-tcp', targets: ['http://127.0.0.1:3001'], retries: 1 },
      cache: { transport: 'nest-redis', targets: ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6380'] },
      bus: { transport: 'nest-nats', targets: ['nats://127.0.0.1:4222'] },
      typo: { transport: 'nest-kafka', targets: ['kafka://x:1'] }
    },
    routes: [
      { prefix: '/a', upstream: 'web', auth: false, patterns: [{ method: 'GET', pattern: 'x' }] },
      { prefix: '/b', upstream: 'bus', auth: false },
      { prefix: '/c', upstream: 'bus', auth: false, rewritePrefix: '/x', patterns: [{ method: 'GET', pattern: 'x' }] },
      { prefix: '/d', upstream: 'bus', auth: false, patterns: [{ method: 'GET', pattern: 'x', event: 'y' }] },
      { prefix: '/e', upstream: 'bus', auth: false, patterns: [{ method: 'GET', pattern: 'x', data: 'headers' }] }
    ]
  }
  const problems = manifestProblems(manifest)
  t.ok(problems.includes('upstreams.typo.transport: must be one of "http", "nest-tcp", "nest-redis", "nest-nats"'), problems.join('\n'))
  t.ok(problems.includes('routes[4].patterns[0].data: must be one of "body", "params", "query", "envelope"'), problems.join('\n'))
  delete (manifest.upstreams as Record<string, unknown>).typo
  manifest.routes.pop()
  t.same(manifestProblems(manifest), [
    'upstreams.users.retries: only for transport http (this upstream uses nest-tcp)',
    'upstreams.users.targets[0]: "http://127.0.0.1:3001" must use tcp for transport nest-tcp',
    'upstreams.cache.targets: a nest-redis upstream has exactly one target (the Redis URL)',
    'routes[0].upstream: upstream "web" uses transport http; a route with patterns needs one of nest-tcp, nest-redis, nest-nats',
    'routes[1].patterns: is required: upstream "bus" uses transport nest-nats, reached by message patterns, not by proxying',
    'routes[2].rewritePrefix: not supported on a route with patterns',
    'routes[3].patterns[0]: set exactly one of pattern and event'
  ])
})

t.test('a route with patterns validates requests and shapes replies from the manifest, $file schemas included', async (t) => {
  const { port, ns } = await nestTcpService(t)
  const dir = t.testdir({ 'user.json': JSON.stringify({ type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } }) })
  const manifest = manifestFor(port, ns)
  const route = manifest.routes[0]!
  // The route's validate applies to each pattern of its method; a pattern's own wins.
  route.validate = { PUT: { body: { type: 'object', required: ['a'], properties: { a: { type: 'integer' } } } } }
  route.response = { 200: { type: 'object', properties: { body: { type: 'object', properties: { a: { type: 'integer' } } } } } }
  route.patterns![0] = { method: 'GET', path: '/:id', pattern: `${ns}get_user`, validate: { params: { type: 'object', properties: { id: { type: 'integer' } } } }, response: { 200: { $file: 'user.json' } } }
  route.rateLimit = false
  // As loadManifest leaves it: $file paths resolve against the manifest's directory.
  Object.defineProperty(manifest, 'baseDir', { value: dir, enumerable: false })
  const app = await createGateway(manifest, { logLevel: 'silent' })
  t.teardown(async () => { await app.close() })
  const headers = { 'x-api-key': API_KEY }

  const user = await app.inject({ url: '/api/users/7?secret=1', headers })
  t.equal(user.statusCode, 200)
  t.same(user.json(), { id: '7', name: 'user 7' }, 'only the fields of user.json')
  const bad = await app.inject({ url: '/api/users/seven', headers })
  t.equal(bad.statusCode, 400)
  t.same(bad.json(), { statusCode: 400, error: 'Bad Request', message: 'params.id: must be integer', requestId: bad.headers['x-request-id'] })
  t.equal((await app.inject({ url: '/api/users/seven' })).statusCode, 401, 'authentication comes before validation')

  const put = await app.inject({ method: 'PUT', url: '/api/users/8', headers, payload: { a: 1, extra: 'x' } })
  t.equal(put.statusCode, 200)
  t.same(put.json(), { body: { a: 1 } }, 'the route\'s response schema: identity, params and the extra field are dropped')
  const badPut = await app.inject({ method: 'PUT', url: '/api/users/8', headers, payload: { a: 'one' } })
  t.equal(badPut.statusCode, 400)
  t.equal(badPut.json().message, 'body.a: must be integer')

  const docs = (await app.inject({ url: '/docs/json' })).json()
  const get = docs.paths['/api/users/{id}'].get
  t.same(get.parameters, [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }])
  t.same(get.responses['200'].content['application/json'].schema, { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } })
  t.same(docs.paths['/api/users/{id}'].put.requestBody.content['application/json'].schema, route.validate.PUT!.body)
  t.notOk(docs.paths['/api/users'].post.responses['200'], 'an event\'s 202 is not given the route\'s response schema')
})

t.test('contract problems on routes with patterns are reported with their manifest path', async (t) => {
  const manifest = manifestFor(3999, 'x.')
  const route = manifest.routes[0]!
  route.patterns![0] = { method: 'GET', path: '/:id', pattern: 'x.get_user', validate: { params: { type: 'objekt' } } }
  route.patterns![1] = { method: 'POST', path: '/', event: 'x.user_created', response: { 200: { type: 'object' } } }
  route.patterns![2] = { method: 'PUT', path: '/:id', pattern: 'x.echo', response: { 200: { $file: 'missing.json' } } }
  const problems = manifestProblems(manifest, t.testdir({}))
  t.match(problems, [
    /^routes\[0\]\.patterns\[2\]\.response\.200\.\$file: cannot read missing\.json/
  ])
  route.patterns![2] = { method: 'PUT', path: '/:id', pattern: 'x.echo', response: { 201: { type: 'object' } } }
  t.match(manifestProblems(manifest), [/^routes\[0\]\.patterns\[0\]\.validate\.params: invalid JSON Schema/])
  route.patterns![0] = { method: 'GET', path: '/:id', pattern: 'x.get_user' }
  t.same(manifestProblems(manifest), ['routes[0].patterns[1].response: an event is answered 202 with no body; only a pattern\'s reply can be shaped'])
  route.patterns![1] = { method: 'POST', path: '/', event: 'x.user_created' }
  t.same(manifestProblems(manifest), ['routes[0].patterns[2].response: must hold exactly one schema, under 200 (or 2xx): a reply is answered 200'])
})
