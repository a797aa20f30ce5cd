import type { Test } from 'tap'
import t from 'tap'
import { buildPostsApp } from '../src/app.js'

interface Who { id?: string, roles?: string, email?: string }
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are read loosely in tests
type Loose = any

async function start (t: Test, instanceId = 'posts-test'): Promise<string> {
  const app = await buildPostsApp({ instanceId })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

async function call (base: string, path: string, init: { method?: string, body?: unknown, as?: Who } = {}): Promise<{ status: number, headers: Headers, body: Loose }> {
  const headers: Record<string, string> = {}
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.as?.id !== undefined) headers['x-user-id'] = init.as.id
  if (init.as?.roles !== undefined) headers['x-user-roles'] = init.as.roles
  if (init.as?.email !== undefined) headers['x-user-email'] = init.as.email
  const response = await fetch(base + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) }
}

const alice: Who = { id: 'user-alice', roles: 'user', email: 'alice@example.test' }
const bob: Who = { id: 'user-bob', roles: 'user' }
const admin: Who = { id: 'user-admin', roles: 'user,admin' }

t.test('the public list exposes only id, title and author; the internal model has more', async (t) => {
  const base = await start(t)
  const created = await call(base, '/api/posts', { body: { title: 'Hello', body: 'First post' }, as: alice })
  t.equal(created.status, 201)
  t.equal(created.headers.get('location'), `/api/posts/${created.body.id as string}`)
  t.same(Object.keys(created.body).sort(), ['author', 'body', 'createdAt', 'id', 'title', 'updatedAt'])
  t.equal(created.body.author, 'alice@example.test')

  const list = await call(base, '/api/posts')
  t.equal(list.status, 200)
  t.same(list.body, [{ id: created.body.id, title: 'Hello', author: 'alice@example.test' }])

  const internal = await call(base, '/admin/posts', { as: admin })
  t.match(internal.body[0], { id: created.body.id, ownerId: 'user-alice', body: 'First post', internalScore: 0, status: 'published', moderationNotes: [] })

  const one = await call(base, `/api/posts/${created.body.id as string}`)
  t.equal(one.body.body, 'First post')
  t.notOk('internalScore' in one.body || 'ownerId' in one.body || 'moderationNotes' in one.body)
})

t.test('writes need x-user-id; the author falls back to the id', async (t) => {
  const base = await start(t)
  t.equal((await call(base, '/api/posts', { body: { title: 'anonymous' } })).status, 401)
  t.equal((await call(base, '/api/posts', { body: { title: '' }, as: bob })).status, 400)
  const extra = await call(base, '/api/posts', { body: { title: 'x', ownerId: 'user-alice', internalScore: 99 }, as: bob })
  t.equal(extra.status, 400, 'unknown fields are refused, not silently dropped')
  t.equal(extra.body.message, 'body must NOT have additional properties')
  t.same((await call(base, '/admin/posts', { as: admin })).body, [], 'a client cannot set internal fields')
  const created = await call(base, '/api/posts', { body: { title: 'By Bob' }, as: bob })
  t.equal(created.body.author, 'user-bob')
  t.equal(created.body.body, '')
  t.equal((await call(base, `/api/posts/${created.body.id as string}`, { method: 'DELETE' })).status, 401)
})

t.test('only the owner or an admin may update or delete', async (t) => {
  const base = await start(t)
  const { body: post } = await call(base, '/api/posts', { body: { title: 'Mine', body: 'text' }, as: alice })
  const path = `/api/posts/${post.id as string}`
  t.equal((await call(base, path, { method: 'PATCH', body: { title: 'Hijacked' }, as: bob })).status, 403)
  t.equal((await call(base, path, { method: 'DELETE', as: bob })).status, 403)
  const patched = await call(base, path, { method: 'PATCH', body: { title: 'Mine, edited' }, as: alice })
  t.equal(patched.status, 200)
  t.equal(patched.body.title, 'Mine, edited')
  t.equal(patched.body.body, 'text')
  t.equal((await call(base, path, { method: 'PATCH', body: {}, as: alice })).status, 400, 'an empty patch is refused')
  const replaced = await call(base, path, { method: 'PUT', body: { title: 'Replaced', body: 'new' }, as: admin })
  t.equal(replaced.status, 200, 'an admin may')
  t.match(replaced.body, { title: 'Replaced', body: 'new' })
  t.equal((await call(base, path, { method: 'PUT', body: { title: 'no body' }, as: alice })).status, 400)
  t.equal((await call(base, path, { method: 'DELETE', as: alice })).status, 204)
  t.equal((await call(base, path)).status, 404)
  t.equal((await call(base, path, { method: 'DELETE', as: alice })).status, 404)
})

t.test('moderation is for admins; hidden posts leave the public list', async (t) => {
  const base = await start(t)
  const { body: post } = await call(base, '/api/posts', { body: { title: 'Spam' }, as: bob })
  const moderate = `/admin/posts/${post.id as string}/moderate`
  t.equal((await call(base, '/admin/posts')).status, 401)
  t.equal((await call(base, '/admin/posts', { as: alice })).status, 403)
  t.equal((await call(base, moderate, { body: { action: 'hide' }, as: alice })).status, 403)
  const hidden = await call(base, moderate, { body: { action: 'hide', note: 'spam' }, as: admin })
  t.equal(hidden.status, 200)
  t.match(hidden.body, { status: 'hidden', moderationNotes: [{ by: 'user-admin', action: 'hide', note: 'spam' }] })
  t.same((await call(base, '/api/posts')).body, [])
  t.equal((await call(base, `/api/posts/${post.id as string}`, { as: alice })).status, 404)
  t.equal((await call(base, `/api/posts/${post.id as string}`, { as: bob })).status, 200, 'the owner still sees it')
  t.equal((await call(base, moderate, { body: { action: 'restore' }, as: admin })).body.status, 'published')
  t.equal((await call(base, '/api/posts')).body.length, 1)
  t.equal((await call(base, '/admin/posts/nope/moderate', { body: { action: 'hide' }, as: admin })).status, 404)
  t.equal((await call(base, moderate, { body: { action: 'delete' }, as: admin })).status, 400)
})

t.test('the list pages', async (t) => {
  const base = await start(t)
  for (let i = 0; i < 5; i++) await call(base, '/api/posts', { body: { title: `post ${i}` }, as: alice })
  t.equal((await call(base, '/api/posts?limit=2')).body.length, 2)
  t.equal((await call(base, '/api/posts?limit=2&offset=4')).body.length, 1)
  t.equal((await call(base, '/api/posts?limit=1000')).status, 400)
})

t.test('every response names the instance; two instances keep separate state', async (t) => {
  const one = await start(t, 'posts-a')
  const two = await start(t, 'posts-b')
  await call(one, '/api/posts', { body: { title: 'only on a' }, as: alice })
  const a = await call(one, '/api/posts')
  const b = await call(two, '/api/posts')
  t.equal(a.headers.get('x-served-by'), 'posts-a')
  t.equal(b.headers.get('x-served-by'), 'posts-b')
  t.equal(a.body.length, 1)
  t.equal(b.body.length, 0)
  t.equal((await call(one, '/nowhere')).headers.get('x-served-by'), 'posts-a', 'errors too')
  t.same((await call(two, '/health')).body, { status: 'ok', instance: 'posts-b' })
})

t.test('duplicated or insane identity headers count as absent', async (t) => {
  const base = await start(t)
  const response = await fetch(`${base}/api/posts`, {
    method: 'POST',
    headers: [['content-type', 'application/json'], ['x-user-id', 'a'], ['x-user-id', 'b']],
    body: JSON.stringify({ title: 't' })
  })
  t.equal(response.status, 401)
  t.equal((await call(base, '/api/posts', { body: { title: 't' }, as: { id: 'has space' } })).status, 401)
})

t.test('bodies are taken as sent: no type coercion, no unknown fields, no blank titles or control characters', async (t) => {
  const base = await start(t)
  const refused = async (body: unknown, message: string, method = 'POST', path = '/api/posts'): Promise<void> => {
    const answer = await call(base, path, { method, body, as: alice })
    t.equal(answer.status, 400, `${method} ${JSON.stringify(body)}`)
    t.match(answer.body, { statusCode: 400, error: 'Bad Request', message })
  }
  await refused({ title: 5 }, 'body/title must be string')
  await refused({ title: ['x'] }, 'body/title must be string')
  await refused({ title: 'x', body: 5 }, 'body/body must be string')
  await refused({ title: null }, 'body/title must be string')
  await refused({ title: 'x', extra: true }, 'body must NOT have additional properties')
  await refused({ title: '   ' }, 'body/title must not be blank')
  await refused({ title: '\u0000' }, 'body/title must not contain control characters')
  await refused({ title: 'ring\u0007' }, 'body/title must not contain control characters')
  await refused({ title: '\u001b[2Jcleared' }, 'body/title must not contain control characters')
  await refused({ title: 'two\nlines' }, 'body/title must not contain control characters')
  await refused(['x'], 'body must be object')
  t.same((await call(base, '/admin/posts', { as: admin })).body, [], 'nothing was stored')

  const created = await call(base, '/api/posts', { body: { title: '  Trimmed  ', body: 'line one\nline two' }, as: alice })
  t.equal(created.status, 201)
  t.equal(created.body.title, 'Trimmed', 'stored trimmed, as the resumes service stores its titles')
  t.equal(created.body.body, 'line one\nline two', 'a body may have line breaks')
  const path = `/api/posts/${created.body.id as string}`
  await refused({ title: ' ' }, 'body/title must not be blank', 'PATCH', path)
  await refused({ title: 'x', body: 'y', ownerId: 'user-bob' }, 'body must NOT have additional properties', 'PUT', path)
  await refused({ title: '\t', body: 'y' }, 'body/title must not contain control characters', 'PUT', path)
  await refused({ body: 5 }, 'body/body must be string', 'PATCH', path)
  await refused({ action: 'hide', note: 1 }, 'body/note must be string', 'POST', `/admin/posts/${created.body.id as string}/moderate`)
  t.match((await call(base, path, { method: 'PATCH', body: { title: ' Renamed ' }, as: alice })).body, { title: 'Renamed', body: 'line one\nline two' })
  t.match((await call(base, path)).body, { title: 'Renamed' })
})

t.test('query strings are still read as numbers where the schema says integer', async (t) => {
  const base = await start(t)
  for (let i = 0; i < 3; i++) await call(base, '/api/posts', { body: { title: `post ${i}` }, as: alice })
  const all = (await call(base, '/api/posts')).body
  t.equal(all.length, 3)
  t.same((await call(base, '/api/posts?limit=1&offset=2')).body, all.slice(2, 3))
  t.match(await call(base, '/api/posts?limit=abc'), { status: 400, body: { message: 'querystring/limit must be integer' } })
  t.match(await call(base, '/api/posts?limit=1.5'), { status: 400, body: { message: 'querystring/limit must be integer' } })
  t.match(await call(base, '/api/posts?limit=1&limit=2'), { status: 400, body: { message: 'querystring/limit must be integer' } })
  t.match(await call(base, '/api/posts?offset=-1'), { status: 400, body: { message: 'querystring/offset must be >= 0' } })
  t.equal((await call(base, '/admin/posts?limit=2', { as: admin })).body.length, 2)
})

t.test('an over-long id is the same 400 at any length, in Fastify\'s shape, without the URL', async (t) => {
  const base = await start(t)
  const expected = { statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: 'params/id must NOT have more than 64 characters' }
  for (const length of [65, 100, 101, 500, 5000]) {
    const id = 'a'.repeat(length)
    for (const [method, path, body] of [
      ['GET', `/api/posts/${id}?token=secret`, undefined],
      ['PATCH', `/api/posts/${id}`, { title: 'x' }],
      ['DELETE', `/api/posts/${id}`, undefined],
      ['POST', `/admin/posts/${id}/moderate`, { action: 'hide' }]
    ] as const) {
      const response = await fetch(base + path, {
        method,
        headers: { 'x-user-id': 'user-admin', 'x-user-roles': 'admin', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body)
      })
      const text = await response.text()
      t.equal(response.status, 400, `${method} ${length} characters`)
      t.match(response.headers.get('content-type'), /^application\/json/)
      t.same(JSON.parse(text), expected)
      t.notOk(text.includes('aaaa') || text.includes('secret'), 'the URL is not echoed')
      t.equal(response.headers.get('x-served-by'), 'posts-test')
    }
  }
  const malformed = await fetch(`${base}/api/posts/%E0%A4%A?token=secret`)
  t.equal(malformed.status, 400)
  t.same(await malformed.json(), { statusCode: 400, code: 'FST_ERR_BAD_URL', error: 'Bad Request', message: 'malformed URL: a percent-encoding does not decode' })
  t.equal((await call(base, `/api/posts/${'a'.repeat(64)}`)).status, 404, '64 characters are an id, just not a known one')
})
