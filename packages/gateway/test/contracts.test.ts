import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createSigner } from 'fast-jwt'
import type { FastifyInstance } from 'fastify'
import { createGateway, loadManifest, ManifestError, type Manifest } from '../src/index.js'
import { parseManifestText } from '../src/manifest/load.js'

const fixtures = fileURLToPath(new URL('./fixtures/contracts/', import.meta.url))
const SECRET = 'contracts-test-secret-of-at-least-32-bytes!'
const sign = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 60_000 })

interface Seen { method: string, url: string, headers: IncomingMessage['headers'], body: string }

/** A posts service whose answers carry internal fields; it records what it got. */
async function postsService (t: Test): Promise<{ url: string, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      const payload = req.url!.startsWith('/internal/users/')
        ? { id: decodeURIComponent(req.url!.split('/')[3]!), name: 'Ann', email: 'ann@example.com', passwordHash: 'x' }
        : [{ id: 'p1', title: 'Hello', author: 'ann', draftNotes: 'internal' }]
      const json = JSON.stringify(payload)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), server: 'posts/1.0', 'x-powered-by': 'Express' })
      res.end(json)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

function manifest (upstream: string): Manifest {
  return {
    version: 1,
    server: { host: '127.0.0.1', port: 0, logLevel: 'silent' },
    auth: { jwt: { secret: SECRET, algorithms: ['HS256'] }, identityHeaders: { 'x-user-id': 'sub' } },
    upstreams: { posts: { targets: [upstream] } },
    routes: [
      {
        prefix: '/api/posts',
        upstream: 'posts',
        rewritePrefix: '/posts',
        auth: false,
        validate: {
          POST: { body: { $file: './post.schema.json' } },
          GET: { querystring: { type: 'object', properties: { limit: { type: 'integer', maximum: 50 } } } }
        },
        response: { 200: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, title: { type: 'string' }, author: { type: 'string' } } } } },
        requestHeaders: { remove: ['x-debug'], set: { 'x-gateway': 'tollgate', 'x-correlation': '${request.id}' } },
        responseHeaders: { remove: ['server', 'x-powered-by'] }
      },
      {
        prefix: '/api/users',
        upstream: 'posts',
        path: '/:id/profile',
        rewrite: '/internal/users/:id/profile',
        methods: ['GET'],
        auth: {},
        response: { '2xx': { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } } },
        requestHeaders: { set: { 'x-tenant': 'tenant-${identity.id}' } }
      }
    ]
  } as Manifest
}

async function start (t: Test, value: Manifest): Promise<FastifyInstance> {
  const app = await createGateway(Object.defineProperty(value, 'baseDir', { value: fixtures, enumerable: false }))
  t.teardown(() => app.close())
  return app
}

t.test('the manifest keys reach the proxy: validation, shaping and header rules through createGateway', async (t) => {
  const posts = await postsService(t)
  const app = await start(t, manifest(posts.url))

  const invalid = await app.inject({ method: 'POST', url: '/api/posts', headers: { 'content-type': 'application/json' }, payload: { title: 7, extra: true } })
  t.equal(invalid.statusCode, 400)
  const body = invalid.json() as { statusCode: number, error: string, message: string, requestId: string }
  t.equal(body.error, 'Bad Request')
  t.same(body.message.split('; ').sort(), ['body.extra: is not allowed', 'body.title: must be string'], 'every problem as path: message (schema from $file)')
  t.type(body.requestId, 'string')
  const query = await app.inject({ url: '/api/posts?limit=99' })
  t.equal(query.statusCode, 400)
  t.equal(query.json().message, 'querystring.limit: must be <= 50')
  t.equal(posts.seen.length, 0, 'the upstream never saw an invalid request')

  const valid = await app.inject({ method: 'POST', url: '/api/posts', headers: { 'content-type': 'application/json', 'x-debug': 'on' }, payload: '{"title":"ok"}' })
  t.equal(valid.statusCode, 200)
  t.same(valid.json(), [{ id: 'p1', title: 'Hello', author: 'ann' }], 'the internal field is gone')
  t.equal(valid.headers.server, undefined)
  t.equal(valid.headers['x-powered-by'], undefined)
  const got = posts.seen[0]!
  t.equal(got.body, '{"title":"ok"}')
  t.equal(got.headers['x-debug'], undefined)
  t.equal(got.headers['x-gateway'], 'tollgate')
  t.equal(got.headers['x-correlation'], got.headers['x-request-id'])
})

t.test('a path template with the identity in a header; encoded params stay in their segment', async (t) => {
  const posts = await postsService(t)
  const app = await start(t, manifest(posts.url))
  t.equal((await app.inject({ url: '/api/users/42/profile' })).statusCode, 401, 'auth still runs first')
  const token = sign({ sub: 'ann' })
  const res = await app.inject({ url: '/api/users/a%3Fb%23c/profile', headers: { authorization: `Bearer ${token}`, 'x-tenant': 'spoofed', 'x-user-id': 'mallory' } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { id: 'a?b#c', name: 'Ann' }, 'shaped: no email, no passwordHash')
  const got = posts.seen[0]!
  t.equal(got.url, '/internal/users/a%3Fb%23c/profile')
  t.equal(got.headers['x-tenant'], 'tenant-ann')
  t.equal(got.headers['x-user-id'], 'ann', 'the identity header is the verified one')
})

t.test('the OpenAPI document carries the request and response schemas', async (t) => {
  const posts = await postsService(t)
  const app = await start(t, manifest(posts.url))
  const doc = (await app.inject({ url: '/docs/json' })).json() as { paths: Record<string, Record<string, Record<string, unknown>>> }
  const post = doc.paths['/api/posts']!.post!
  t.match(post.requestBody, { required: true, content: { 'application/json': { schema: { required: ['title'], additionalProperties: false } } } })
  t.match(doc.paths['/api/posts/{path}']!.get!.parameters, [{ name: 'path', in: 'path' }, { name: 'limit', in: 'query', schema: { type: 'integer' } }])
  t.match((doc.paths['/api/posts']!.get!.responses as Record<string, unknown>)['200'], { content: { 'application/json': { schema: { type: 'array' } } } })
  const profile = doc.paths['/api/users/{id}/profile']!.get!
  t.match(profile.parameters, [{ name: 'id', in: 'path', required: true }])
  t.ok((profile.responses as Record<string, unknown>)['2XX'])
})

t.test('protected headers in header rules, bad schemas and bad templates stop the gateway with path: message', async (t) => {
  const base = manifest('http://127.0.0.1:1')
  const routes = base.routes
  const broken = {
    ...base,
    routes: [
      { ...routes[0]!, requestHeaders: { set: { 'x-user-id': 'admin' }, remove: ['traceparent'] } },
      { ...routes[1]!, rewrite: '/internal/:nope' },
      { prefix: '/api/files', upstream: 'posts', auth: false, validate: { POST: { body: { $file: './missing.json' } } } },
      { prefix: '/api/bad', upstream: 'posts', auth: false, validate: { POST: { body: { type: 'objekt' } } } },
      { prefix: '/api/hop', upstream: 'posts', auth: false, responseHeaders: { rename: { 'x-request-id': 'x-id' } } }
    ]
  } as Manifest
  const error = await start(t, broken).then(() => null, (err: unknown) => err)
  t.type(error, ManifestError)
  const problems = (error as ManifestError).problems
  t.match(problems, [
    /^routes\[0\]\.requestHeaders\.remove\[0\]: traceparent is protected/,
    /^routes\[1\]\.rewrite: :nope is not captured/,
    /^routes\[2\]\.validate\.POST\.body\.\$file: cannot read \.\/missing\.json \(ENOENT\)/,
    /^routes\[3\]\.validate\.POST\.body: invalid JSON Schema/,
    /^routes\[4\]\.responseHeaders\.rename\.x-request-id: x-request-id is protected/
  ])
  const identity = { ...base, routes: [{ ...routes[0]!, requestHeaders: { set: { X_User_Id: 'admin' } } }] } as Manifest
  const refused = await start(t, identity).then(() => null, (err: unknown) => err) as ManifestError
  t.match(refused.problems, [/^routes\[0\]\.requestHeaders\.set\.X_User_Id: x_user_id is protected/], 'an identity header under an alias')
})

t.test('the manifest schema knows the new keys and refuses unknown ones inside them', async (t) => {
  const yaml = `
version: 1
upstreams: { users: { targets: ["http://127.0.0.1:3000"] } }
routes:
  - prefix: /api/users
    upstream: users
    auth: false
    path: /:id/profile
    rewrite: /internal/users/:id/profile
    validate:
      GET: { params: { type: object, properties: { id: { type: string, pattern: "^[0-9]+$" } } } }
    response:
      200: { type: object, properties: { id: { type: string } } }
    responseBufferLimit: 512kb
    requestHeaders: { set: { x-tenant: "\${identity.id}" }, add: { x-via: tollgate }, remove: [x-debug], rename: { x-old: x-new } }
    responseHeaders: { remove: [server] }
`
  const loaded = parseManifestText(yaml)
  t.equal(loaded.routes[0]!.requestHeaders?.set?.['x-tenant'], '${identity.id}', 'not taken for an environment variable')
  const bad = yaml.replace('remove: [server]', 'drop: [server]').replace('GET: { params', 'GET: { form')
  let problems: string[] = []
  try {
    parseManifestText(bad)
  } catch (error) {
    problems = (error as ManifestError).problems as string[]
  }
  t.ok(problems.includes('routes[0].validate.GET.form: unknown key'), 'unknown request part named')
  t.ok(problems.includes('routes[0].responseHeaders.drop: unknown key'), 'unknown rule named')
  t.throws(() => parseManifestText(yaml.replace('200:', '404:')), /routes\[0\]\.response\.404: invalid name/)
  t.throws(() => parseManifestText(yaml.replace('path: /:id/profile', 'path: /:id/../x')), /routes\[0\]\.path: segment "\.\." must be/)
  await t.rejects(loadManifest(`${fixtures}missing.yaml`))
})
