import t from 'tap'
import { gzipSync } from 'node:zlib'
import { gateway, rawUpstream } from '../helpers/servers.js'

// Audit finding: an answer with `Transfer-Encoding: gzip, chunked` was de-chunked and
// re-framed, and the gzip label went with the hop-by-hop header: the client got compressed
// bytes labelled as nothing. Such answers now get 502, as nginx refuses any transfer coding
// but chunked.

function chunked (body: Buffer): string {
  return `${body.length.toString(16)}\r\n${body.toString('latin1')}\r\n0\r\n\r\n`
}

t.test('an answer with a transfer coding other than chunked gets 502', async (t) => {
  const zipped = gzipSync('hello')
  for (const coding of ['gzip, chunked', 'deflate,chunked', 'chunked, gzip, chunked', 'chunked,chunked', 'chunked, Chunked']) {
    const raw = await rawUpstream(t, (socket) => {
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: ${coding}\r\n\r\n` + chunked(zipped), 'latin1')
    })
    const app = await gateway(t, { upstreams: { posts: { targets: [raw.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
    const res = await app.inject({ url: '/api/x' })
    t.equal(res.statusCode, 502, coding)
    t.equal(res.json().code, 'TOLLGATE_PROXY_BAD_GATEWAY')
  }
})

t.test('plain chunked answers, in any case, still pass', async (t) => {
  for (const coding of ['chunked', 'Chunked', ' CHUNKED ']) {
    const raw = await rawUpstream(t, (socket) => {
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nTransfer-Encoding: ${coding}\r\n\r\n` + chunked(Buffer.from('hello')), 'latin1')
    })
    const app = await gateway(t, { upstreams: { posts: { targets: [raw.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
    const res = await app.inject({ url: '/api/x' })
    t.equal(res.statusCode, 200, coding)
    t.equal(res.body, 'hello')
  }
})
