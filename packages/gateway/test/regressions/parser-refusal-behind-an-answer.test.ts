// A request Node cannot parse, pipelined behind an answer still being written: the gateway's
// refusal (its clientErrorHandler) was written into the middle of that answer's body, so the
// client read a corrupted 200. The connection is now only closed; the answer in flight is
// not touched.
import t from 'tap'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { startGateway } from '../helpers/hostile.js'

t.test('garbage pipelined behind a streaming answer never lands inside it', async (t) => {
  const upstream = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '15' })
    response.write('part1-')
    setTimeout(() => { response.end('part2-end') }, 400)
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const { port } = await startGateway(t, {
    version: 1,
    upstreams: { stream: { targets: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`] } },
    routes: [{ prefix: '/api', upstream: 'stream', auth: false }]
  })
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.on('close', () => { resolve() }))
  socket.write('GET /api/stream HTTP/1.1\r\nHost: gw\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 150))
  socket.write('GARBAGE\r\n\r\n')
  await closed
  t.notMatch(received, /HTTP\/1\.1 400/, 'no refusal written into the answer')
  t.notMatch(received.slice(received.indexOf('\r\n\r\n') + 4), /HTTP/, 'the body holds only the upstream\'s bytes')
  t.match(received, /^HTTP\/1\.1 200 /)
})
