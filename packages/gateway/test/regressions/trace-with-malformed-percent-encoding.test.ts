// TRACE gets 405 on every path (contract), even one whose percent-encoding the
// router cannot parse: the gateway's frameworkErrors handler answers it.
import t from 'tap'
import { connect } from 'node:net'
import { createGateway } from '../../src/index.js'
import { echoUpstream } from '../helpers/upstream.js'

t.test('TRACE /%zz gets 405 with Allow, and nothing reaches the upstream', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const app = await createGateway({
    version: 1,
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [{ prefix: '/api', upstream: 'echo', auth: false }]
  }, { logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  for (const target of ['/%zz', '/api/%zz', '/api/%']) {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end(`TRACE ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
      })
      let data = ''
      socket.on('data', (chunk: Buffer) => { data += chunk.toString('latin1') })
      socket.on('end', () => { resolve(data) })
      socket.on('error', reject)
    })
    t.match(answer, /^HTTP\/1\.1 405 /, target)
    t.match(answer, /\r\nallow: GET/i, `${target} carries Allow`)
  }
  t.equal(upstream.seen.length, 0)
})
