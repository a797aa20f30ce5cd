import t from 'tap'
import { exchange, publicManifest, recordingUpstream, startGateway } from '../helpers/hostile.js'

// Found while writing the request-path fuzz model: a path that is not in normal form
// but that the router did not match to a proxy route (`/x/../api/y`, `//api/y`) got
// 404, while the same kind of path on a route got 400. The contract says such paths
// are refused with 400; now they are on every path, before routing.

t.test('a path not in normal form gets 400 whether or not the router matched it, and reaches no upstream', async (t) => {
  const upstream = await recordingUpstream()
  t.teardown(upstream.close)
  const { port } = await startGateway(t, publicManifest(upstream))
  for (const path of ['/x/../api/y', '//api/y', '/./api/y', '/x/%2e%2e/api/y', '/x\\..\\api/y', '/x;/api/y', '/healthz/../api/y', '/nowhere//']) {
    const result = await exchange(port, `GET ${path} HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n`, { responses: 1 })
    t.equal(result.responses[0]?.status, 400, path)
    t.match(result.responses[0]?.body, /Bad request path/, `${path}: says why`)
  }
  const unmatched = await exchange(port, 'GET /nowhere HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n', { responses: 1 })
  t.equal(unmatched.responses[0]?.status, 404, 'a normal path that matches nothing is still 404')
  t.equal(upstream.started.length, 0)
})
