import t, { type Test } from 'tap'
import { gateway, listen, rawRequest, upstream } from './helpers/servers.js'

const postSchema = {
  type: 'object',
  required: ['title'],
  properties: { title: { type: 'string', maxLength: 20 }, tags: { type: 'array', items: { type: 'string' } } },
  additionalProperties: false
}

async function setup (t: Test) {
  const posts = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [posts.url] } },
    routes: [
      {
        prefix: '/api/posts',
        upstream: 'posts',
        validate: {
          POST: {
            body: postSchema,
            querystring: { type: 'object', properties: { draft: { type: 'boolean' } } },
            headers: { type: 'object', required: ['X-Tenant'], properties: { 'X-Tenant': { type: 'string', pattern: '^[a-z]+$' } } }
          },
          GET: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 50 } }, additionalProperties: false } }
        }
      },
      {
        prefix: '/api/users',
        upstream: 'posts',
        path: '/:id/profile',
        validate: { GET: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]+$' } } } } }
      }
    ]
  })
  return { posts, app }
}

t.test('a valid body is forwarded byte for byte, and valid queries pass', async (t) => {
  const { posts, app } = await setup(t)
  const body = '{ "title" : "hello",  "tags": ["a"] }'
  const res = await app.inject({ method: 'POST', url: '/api/posts?draft=true', headers: { 'content-type': 'application/json', 'x-tenant': 'acme' }, payload: body })
  t.equal(res.statusCode, 200)
  t.equal(posts.hits, 1)
  t.equal(posts.seen[0]!.body.toString(), body, 'exactly the bytes the client sent')
  t.equal(posts.seen[0]!.url, '/?draft=true')
  const list = await app.inject({ url: '/api/posts?limit=10' })
  t.equal(list.statusCode, 200, 'a string query value satisfies type integer')
  t.equal(posts.seen[1]!.url, '/?limit=10', 'and arrives as sent')
})

t.test('an invalid body is refused with 400 naming every problem, and the upstream is not hit', async (t) => {
  const { posts, app } = await setup(t)
  const res = await app.inject({
    method: 'POST',
    url: '/api/posts?draft=maybe',
    headers: { 'content-type': 'application/json', 'x-tenant': 'ACME' },
    payload: { title: 42, tags: ['a', 7], internal: true }
  })
  t.equal(res.statusCode, 400)
  const { message, code } = res.json() as { message: string, code: string }
  t.equal(code, 'TOLLGATE_PROXY_INVALID_REQUEST')
  for (const problem of [
    'body.title: must be string',
    'body.tags[1]: must be string',
    'body.internal: is not allowed',
    'querystring.draft: must be boolean',
    'headers.x-tenant: must match pattern "^[a-z]+$"'
  ]) t.ok(message.includes(problem), `names ${problem} (got ${message})`)
  t.equal(posts.hits, 0, 'the upstream never saw it')
})

t.test('missing fields, missing headers, bad JSON, a missing body and a non-JSON body are refused', async (t) => {
  const { posts, app } = await setup(t)
  const missing = await app.inject({ method: 'POST', url: '/api/posts', headers: { 'content-type': 'application/json' }, payload: '{}' })
  t.equal(missing.statusCode, 400)
  t.match(missing.json().message, 'body.title: is required')
  t.match(missing.json().message, 'headers.x-tenant: is required')
  const bad = await app.inject({ method: 'POST', url: '/api/posts', headers: { 'content-type': 'application/json', 'x-tenant': 'a' }, payload: '{"title":' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().message, 'body: is not valid JSON')
  const poisoned = await app.inject({ method: 'POST', url: '/api/posts', headers: { 'content-type': 'application/json', 'x-tenant': 'a' }, payload: '{"title":"x","__proto__":{"admin":true}}' })
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is refused as Fastify does')
  const none = await app.inject({ method: 'POST', url: '/api/posts', headers: { 'x-tenant': 'a' } })
  t.equal(none.statusCode, 400)
  t.equal(none.json().message, 'body: must be object')
  const text = await app.inject({ method: 'POST', url: '/api/posts', headers: { 'content-type': 'text/plain', 'x-tenant': 'a' }, payload: 'title=x' })
  t.equal(text.statusCode, 415)
  const query = await app.inject({ url: '/api/posts?limit=500&debug=1' })
  t.equal(query.statusCode, 400)
  t.match(query.json().message, 'querystring.limit: must be <= 50')
  t.match(query.json().message, 'querystring.debug: is not allowed')
  t.equal(posts.hits, 0)
})

t.test('coercion for the check never changes what the upstream receives', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [posts.url] } },
    routes: [{
      prefix: '/api',
      upstream: 'posts',
      path: '/:id',
      validate: {
        GET: {
          params: { type: 'object', properties: { id: { type: 'integer' } } },
          headers: { type: 'object', properties: { 'x-count': { type: 'integer' }, 'x-list': { type: 'array', items: { type: 'string' } } } }
        }
      }
    }]
  })
  const res = await app.inject({ url: '/api/007', headers: { 'x-count': '010', 'x-list': 'a' } })
  t.equal(res.statusCode, 200)
  t.equal(posts.seen[0]!.url, '/007', 'the param as sent, not 7')
  t.equal(posts.seen[0]!.headers['x-count'], '010')
  t.same(posts.seen[0]!.rawHeaders.filter((h, i) => i % 2 === 0 && h === 'x-list').length, 1)
  t.equal(posts.seen[0]!.headers['x-list'], 'a')
})

t.test('params captured by a path template are validated', async (t) => {
  const { posts, app } = await setup(t)
  const ok = await app.inject({ url: '/api/users/42/profile' })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().url, '/api/users/42/profile'.replace('/api/users', ''))
  const bad = await app.inject({ url: '/api/users/abc/profile' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().message, 'params.id: must match pattern "^[0-9]+$"')
  t.equal(posts.hits, 1)
})

t.test('a validated body over bodyLimit gets 413 and never reaches the upstream, chunked or not', async (t) => {
  const posts = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [posts.url] } },
    bodyLimit: 64,
    routes: [{ prefix: '/api', upstream: 'posts', validate: { POST: { body: { type: 'object' } } } }]
  })
  const base = await listen(app)
  const big = JSON.stringify({ text: 'x'.repeat(100) })
  const chunked = await rawRequest(base, 'POST /api HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked', `${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`)
  t.equal(chunked.status, 413)
  const sized = await app.inject({ method: 'POST', url: '/api', headers: { 'content-type': 'application/json' }, payload: big })
  t.equal(sized.statusCode, 413)
  const chunkedOk = await rawRequest(base, 'POST /api HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked', '3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n')
  t.equal(chunkedOk.status, 200)
  t.equal(posts.hits, 1)
  t.equal(posts.seen[0]!.body.toString(), '{"a":1}')
})

t.test('bad schemas and validate keys fail at registration with their option path', async (t) => {
  const posts = await upstream(t)
  const cases: Array<[unknown, RegExp]> = [
    [{ POST: { body: { type: 'object', properties: { a: { type: 'strin' } } } } }, /routes\[0\]\.validate\.POST\.body: invalid JSON Schema/],
    [{ POST: { form: {} } }, /routes\[0\]\.validate\.POST\.form: unknown key/],
    [{ POST: { body: { type: 'object', requried: ['a'] } } }, /routes\[0\]\.validate\.POST\.body: invalid JSON Schema \(strict mode: unknown keyword: "requried"\)/],
    [{ post: { body: {} } }, /routes\[0\]\.validate\.post: must be an upper-case method/],
    [{ PUT: { body: {} } }, /routes\[0\]\.validate\.PUT: the route does not allow PUT/]
  ]
  await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/ok', upstream: 'posts', validate: { POST: { body: { type: 'object', example: { a: 1 } } } } }] })
  t.pass('an example annotation is accepted')
  for (const [validate, message] of cases) {
    await t.rejects(gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts', methods: ['POST'], validate } as never] }), { message })
  }
})
