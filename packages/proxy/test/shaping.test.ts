import t, { type Test } from 'tap'
import { gzipSync } from 'node:zlib'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gateway, listen, rawRequest, upstream } from './helpers/servers.js'

const posts = [
  { id: 'p1', title: 'Hello', author: 'ann', passwordHash: 'secret-1', internal: { score: 9 } },
  { id: 'p2', title: 'World', author: 'bob', passwordHash: 'secret-2', internal: { score: 3 } }
]

const itemSchema = { type: 'object', properties: { id: { type: 'string' }, title: { type: 'string' }, author: { type: 'string' } } }

/** An upstream answering by path: the list as JSON, chunked JSON, gzip, text, a large list, a 500, garbage. */
function service (req: IncomingMessage, res: ServerResponse): void {
  const json = JSON.stringify(posts)
  switch (req.url) {
    case '/posts':
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), etag: '"abc"', 'x-upstream': 'yes' })
      res.end(json)
      return
    case '/posts/chunked':
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write(json.slice(0, 10))
      res.end(json.slice(10))
      return
    case '/posts/gzip': {
      const zipped = gzipSync(json)
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': zipped.length })
      res.end(zipped)
      return
    }
    case '/posts/text':
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(json)
      return
    case '/posts/large': {
      const large = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ ...posts[0], id: `p${i}` })))
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(large) })
      res.end(large)
      return
    }
    case '/posts/large-chunked': {
      const large = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ ...posts[0], id: `p${i}` })))
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write(large.slice(0, 1000))
      res.end(large.slice(1000))
      return
    }
    case '/posts/error':
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'boom', stack: 'at internal.js:1' }))
      return
    case '/posts/one':
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify(posts[0]))
      return
    case '/posts/reset':
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 })
      res.write('[{"id":"p1","passwordHash":"x"')
      setTimeout(() => { res.socket?.destroy() }, 20)
      return
    case '/posts/garbage':
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"id": "p1", "passwordHash": ')
      return
    default:
      res.writeHead(404).end()
  }
}

async function setup (t: Test) {
  const api = await upstream(t, service)
  const app = await gateway(t, {
    upstreams: { api: { targets: [api.url] } },
    routes: [{
      prefix: '/api',
      upstream: 'api',
      response: { 200: { type: 'array', items: itemSchema }, '2xx': itemSchema },
      responseBufferLimit: 4096
    }]
  })
  return { api, app }
}

t.test('a JSON answer keeps exactly the schema\'s fields, with a correct content-length', async (t) => {
  const { app } = await setup(t)
  for (const url of ['/api/posts', '/api/posts/chunked']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200)
    t.same(JSON.parse(res.body), posts.map(({ id, title, author }) => ({ id, title, author })), `${url}: only id, title and author`)
    t.notOk(res.body.includes('secret'), `${url}: no internal field`)
    t.equal(res.headers['content-length'], String(Buffer.byteLength(res.body)), `${url}: content-length of the shaped body`)
    t.match(res.headers['content-type'], /^application\/json/)
  }
  const res = await app.inject({ url: '/api/posts' })
  t.equal(res.headers.etag, undefined, 'the upstream etag is dropped (the bytes changed)')
  t.equal(res.headers['x-upstream'], 'yes', 'other headers are kept')
  const created = await app.inject({ url: '/api/posts/one' })
  t.equal(created.statusCode, 201)
  t.same(created.json(), { id: 'p1', title: 'Hello', author: 'ann' }, 'the 2xx schema applies to 201')
})

t.test('over a real connection the shaped body and its length agree', async (t) => {
  const { app } = await setup(t)
  const base = await listen(app)
  const { status, raw } = await rawRequest(base, 'GET /api/posts HTTP/1.1\r\nhost: x')
  t.equal(status, 200)
  const [head, body] = raw.split('\r\n\r\n') as [string, string]
  t.match(head, new RegExp(`content-length: ${Buffer.byteLength(body)}\\r\\n`, 'i'))
  t.notOk(/transfer-encoding/i.test(head))
  t.notOk(body.includes('passwordHash'))
})

t.test('non-JSON, compressed, over-limit and non-2xx answers pass through untouched', async (t) => {
  const { app } = await setup(t)
  const text = await app.inject({ url: '/api/posts/text' })
  t.equal(text.body, JSON.stringify(posts), 'text/plain untouched')
  const gzip = await app.inject({ url: '/api/posts/gzip' })
  t.equal(gzip.headers['content-encoding'], 'gzip')
  t.same(gzip.rawPayload, gzipSync(JSON.stringify(posts)), 'a compressed answer is relayed byte for byte')
  for (const url of ['/api/posts/large', '/api/posts/large-chunked']) {
    const large = await app.inject({ url })
    t.equal(large.statusCode, 200)
    t.ok(large.body.includes('passwordHash'), `${url}: over responseBufferLimit, relayed as is`)
    t.equal(JSON.parse(large.body).length, 200, `${url}: complete`)
  }
  const error = await app.inject({ url: '/api/posts/error' })
  t.equal(error.statusCode, 500)
  t.same(error.json(), { error: 'boom', stack: 'at internal.js:1' }, 'only 2xx answers are shaped')
  const head = await app.inject({ method: 'HEAD', url: '/api/posts' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')
})

t.test('an answer that claims JSON but is not gets 502 rather than leaking', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/api/posts/garbage' })
  t.equal(res.statusCode, 502)
  t.notOk(res.body.includes('passwordHash'))
})

t.test('an upstream that resets while its answer is buffered gets 502, and nothing partial leaks', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/api/posts/reset' })
  t.equal(res.statusCode, 502)
  t.notOk(res.body.includes('passwordHash'))
})

t.test('bad response options fail at registration with their path', async (t) => {
  const api = await upstream(t)
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ response: { 404: {} } }, /routes\[0\]\.response\.404: must be a 2xx status/],
    [{ response: {} }, /routes\[0\]\.response: must be an object of statuses/],
    [{ response: { 200: { type: 'object' } }, responseBufferLimit: 'lots' }, /routes\[0\]\.responseBufferLimit: invalid size/],
    [{ responseBufferLimit: '1mb' }, /routes\[0\]\.responseBufferLimit: only has a meaning with response/]
  ]
  for (const [extra, message] of cases) {
    await t.rejects(gateway(t, { upstreams: { api: { targets: [api.url] } }, routes: [{ prefix: '/api', upstream: 'api', ...extra } as never] }), { message })
  }
})
