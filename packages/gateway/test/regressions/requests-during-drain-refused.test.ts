// A request that reaches the gateway once it is closing came on a connection already open
// (pipelined, or sent as the drain closes it). It ran upstream and then got Fastify's bare
// 503 or, worse, an answer the closing connection never delivered. It is now refused by the
// gateway before any upstream sees it, with its usual JSON, request id and headers.
import t from 'tap'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { startGateway } from '../helpers/hostile.js'

t.test('a request on an open connection during the drain gets the gateway\'s 503 and never reaches the upstream', async (t) => {
  const seen: string[] = []
  const upstream = createServer((request, response) => {
    seen.push(request.url!)
    // Headers at once, the body later: the answer is under way when the drain starts.
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '4' })
    response.write('pa')
    setTimeout(() => { response.end('rt') }, 300)
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const { app, port } = await startGateway(t, {
    version: 1,
    upstreams: { slow: { targets: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`] } },
    routes: [{ prefix: '/api', upstream: 'slow', auth: false }]
  })
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  const closed = new Promise<void>((resolve) => socket.on('close', () => { resolve() }))
  socket.write('GET /api/first HTTP/1.1\r\nHost: gw\r\n\r\n')
  while (!received.includes('pa')) await new Promise((resolve) => setTimeout(resolve, 10))
  const closing = app.close()
  socket.write('POST /api/second HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nhi')
  await closed
  await closing
  const [first, second] = received.split(/(?=HTTP\/1\.1 )/)
  t.match(first, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\npart$/, 'the answer under way finished')
  t.match(second, /^HTTP\/1\.1 503 /, 'the request sent during the drain was refused')
  t.match(second, /\r\nretry-after: 1\r\n/i)
  t.match(second, /\r\nconnection: close\r\n/i)
  t.match(second, /\r\nx-request-id: \S+\r\n/i)
  t.match(second, /\r\nx-content-type-options: nosniff\r\n/i, 'with the security headers')
  t.match(second, /"message":"the gateway is shutting down"/)
  t.same(seen, ['/first'], 'and never reached the upstream')
})
