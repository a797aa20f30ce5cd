import t from 'tap'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { createHash, randomBytes } from 'node:crypto'
import { eventually, gateway, listen, upstream } from './helpers/servers.js'

const TEN_MB = 10 * 1024 * 1024
const sha = (buffer: Buffer): string => createHash('sha256').update(buffer).digest('hex')

interface Sent { status: number, headers: IncomingMessage['headers'], body: Buffer }

/** Sends `body` in 64 KiB chunks, with Content-Length or chunked, and collects the answer. */
async function send (base: string, path: string, body: Buffer, chunked: boolean, method = 'POST'): Promise<Sent> {
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' }
    if (!chunked) headers['content-length'] = String(body.length)
    const req = httpRequest(`${base}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    let offset = 0
    const writeMore = (): void => {
      while (offset < body.length) {
        const chunk = body.subarray(offset, offset + 65_536)
        offset += chunk.length
        if (!req.write(chunk)) {
          req.once('drain', writeMore)
          return
        }
      }
      req.end()
    }
    writeMore()
  })
}

/** An upstream that answers with the body it got, as Content-Length or chunked (`?chunked`). */
async function mirror (t: Parameters<typeof upstream>[0]): Promise<Awaited<ReturnType<typeof upstream>>> {
  return await upstream(t, (req, res, body) => {
    if (req.url!.includes('chunked')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-sha': sha(body) })
      for (let offset = 0; offset < body.length; offset += 100_000) res.write(body.subarray(offset, offset + 100_000))
      res.end()
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'x-sha': sha(body) })
      res.end(body)
    }
  })
}

for (const chunked of [false, true]) {
  const framing = chunked ? 'chunked' : 'Content-Length'
  t.test(`a 10 MB binary body arrives byte for byte both ways, sent and answered as ${framing}`, async (t) => {
    const posts = await mirror(t)
    const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }], bodyLimit: '20mb' })
    const base = await listen(app)
    const body = randomBytes(TEN_MB)
    const res = await send(base, chunked ? '/api/x?chunked' : '/api/x', body, chunked)
    t.equal(res.status, 200)
    t.equal(res.headers['x-sha'], sha(body), 'the upstream got the exact bytes')
    t.equal(res.body.length, TEN_MB)
    t.equal(sha(res.body), sha(body), 'the client got the exact bytes back')
    const seen = posts.seen[0]!
    if (chunked) {
      t.equal(seen.headers['transfer-encoding'], 'chunked')
      t.equal(seen.headers['content-length'], undefined)
      t.equal(res.headers['transfer-encoding'], 'chunked', 'framing re-derived for the client')
    } else {
      t.equal(seen.headers['content-length'], String(TEN_MB))
      t.equal(res.headers['content-length'], String(TEN_MB))
    }
  })
}

t.test('a Content-Length over bodyLimit gets 413 before the body is read; the upstream is never contacted', async (t) => {
  const posts = await mirror(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }], bodyLimit: 1000 })
  const res = await app.inject({ method: 'POST', url: '/api/x', payload: Buffer.alloc(1001) })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'TOLLGATE_PROXY_BODY_TOO_LARGE')
  t.equal(posts.hits, 0)
})

t.test('a body of exactly bodyLimit bytes passes, as Content-Length and as chunked', async (t) => {
  const posts = await mirror(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }], bodyLimit: '1kb' })
  const base = await listen(app)
  const body = randomBytes(1024)
  for (const chunked of [false, true]) {
    const res = await send(base, '/api/x', body, chunked)
    t.equal(res.status, 200, chunked ? 'chunked' : 'content-length')
    t.equal(sha(res.body), sha(body))
  }
})

t.test('the app bodyLimit is the default', async (t) => {
  const posts = await mirror(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] }, { bodyLimit: 10 })
  t.equal((await app.inject({ method: 'POST', url: '/api', payload: Buffer.alloc(10) })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/api', payload: Buffer.alloc(11) })).statusCode, 413)
})

t.test('a chunked body growing past bodyLimit gets 413 and the upstream never sees a complete request', async (t) => {
  const posts = await mirror(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }], bodyLimit: 100_000 })
  const base = await listen(app)
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${base}/api/x`, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      res.resume()
      resolve(res.statusCode!)
    })
    req.on('error', reject)
    // Bounded: at most 64 chunks of 16 KiB (1 MiB), stopping as soon as the gateway answers.
    let sent = 0
    const pump = (): void => {
      if (sent >= 64 || req.destroyed) return
      sent++
      req.write(Buffer.alloc(16_384, 1), () => { setImmediate(pump) })
    }
    pump()
  })
  t.equal(status, 413)
  t.ok(await eventually(() => posts.seen.length === 0 || posts.seen[0]!.aborted || !posts.seen[0]!.complete), 'upstream request cut off')
  t.ok(posts.seen.every((seen) => !seen.complete), 'the upstream never saw a complete request')
})

t.test('a client that goes away mid-request aborts the upstream request', async (t) => {
  let answer: (() => void) | null = null
  const posts = await upstream(t, (_req, res) => { answer = () => res.end('late') })
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const base = await listen(app)
  const req = httpRequest(`${base}/api/slow`, { agent: false })
  req.on('error', () => {})
  req.end()
  t.ok(await eventually(() => answer !== null), 'the upstream got the request')
  req.destroy()
  t.ok(await eventually(() => posts.seen[0]!.aborted), 'the upstream connection was closed')
})

t.test('small bodies (read whole before proxying) and the first streamed size arrive byte for byte', async (t) => {
  const posts = await mirror(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const base = await listen(app)
  for (const size of [1, 1024, 65_536, 65_537]) {
    const body = randomBytes(size)
    const res = await send(base, '/api/x', body, false, size === 1024 ? 'PUT' : 'POST')
    t.equal(res.status, 200, `${size} bytes`)
    t.equal(res.headers['x-sha'], sha(body), `${size} bytes: the upstream got the exact bytes`)
    t.equal(posts.seen.at(-1)!.headers['content-length'], String(size), `${size} bytes: with their content-length`)
  }
})

t.test('a client that leaves before its small body is complete: nothing reaches the upstream, the gateway goes on', async (t) => {
  const posts = await mirror(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [posts.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const base = await listen(app)
  const req = httpRequest(`${base}/api/x`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': '1000' } })
  req.on('error', () => {})
  req.write('{"half":')
  await new Promise((resolve) => setTimeout(resolve, 100))
  req.destroy()
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(posts.seen.length, 0, 'the upstream was never sent a partial request')
  const next = await send(base, '/api/x', Buffer.from('{"whole":true}'), false)
  t.equal(next.status, 200)
  t.equal(posts.seen.length, 1)
})
