// `Expect: 100-continue` with a Content-Length over bodyLimit: Node invited the body with a
// 100 before the gateway's 413 (so the client sent it all for nothing). Now only a body the
// gateway would take is invited.
import t from 'tap'
import { connect } from 'node:net'
import { startGateway } from '../helpers/hostile.js'
import { echoUpstream } from '../helpers/upstream.js'

/** Sends `head`, then `body` once a 100 arrives; resolves with everything read until close. */
async function exchangeWithContinue (port: number, head: string, body: string): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => { socket.write(head) })
    let data = ''
    let sent = false
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1')
      if (!sent && data.startsWith('HTTP/1.1 100')) {
        sent = true
        socket.write(body)
      }
    })
    socket.on('end', () => { resolve(data) })
    socket.on('error', reject)
    socket.setTimeout(5000, () => { socket.destroy(); resolve(data) })
  })
}

t.test('a body declared over bodyLimit gets the 413 without a 100 Continue; one within gets the 100', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, {
    version: 1,
    server: { bodyLimit: '1kb' },
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [{ prefix: '/api', upstream: 'echo', auth: false }]
  })
  const head = (length: number): string =>
    `POST /api/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`

  const refused = await exchangeWithContinue(port, head(4096), 'x'.repeat(4096))
  t.match(refused, /^HTTP\/1\.1 413 /, 'the first answer is the 413')
  t.notMatch(refused, /100 Continue/)

  const accepted = await exchangeWithContinue(port, head(10), '0123456789')
  t.match(accepted, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, 'invited, then proxied')
  t.equal(upstream.seen.length, 1, 'only the accepted body reached the upstream')
  t.equal(upstream.seen[0]!.bodyLength, 10)
})
