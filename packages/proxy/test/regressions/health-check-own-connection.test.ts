import t from 'tap'
import { gateway, rawUpstream, upstream } from '../helpers/servers.js'

// Audit finding: health checks went through the traffic pool, so with every connection of a
// target busy (long downloads, or a hung target) a check waited behind traffic: it stalled,
// its own `timeout` did not bound it, and it was judged whenever it finally ran.

const sleep = async (ms: number): Promise<'stalled'> => await new Promise((resolve) => setTimeout(() => { resolve('stalled') }, ms))

t.test('a health check passes while every traffic connection is busy with a long answer', async (t) => {
  const held: Array<() => void> = []
  let checks = 0
  const busy = await upstream(t, (req, res) => {
    if (req.url === '/health') {
      checks++
      res.end('ok')
      return
    }
    res.writeHead(200)
    res.write('start')
    held.push(() => { res.end('end') })
  })
  const app = await gateway(t, {
    upstreams: { posts: { targets: [busy.url], connections: 1, healthCheck: { path: '/health', timeout: '300ms', unhealthyAfter: 1 } } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  const download = app.inject({ url: '/api/long' })
  for (let i = 0; i < 300 && busy.hits === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  const round = await Promise.race([app.tollgateProxy.checkHealth(), sleep(2000)])
  t.not(round, 'stalled', 'the check does not wait for the busy connection')
  t.equal(checks, 1, 'the check reached the target')
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.healthy, true, 'and the target stays healthy')
  held.shift()!()
  t.equal((await download).statusCode, 200)
})

t.test('a health check of a hung target fails within its timeout, even with traffic stuck on it', async (t) => {
  const requests: string[] = []
  const hung = await rawUpstream(t, (_socket, head) => { requests.push(head.split('\r\n')[0]!) /* never answers */ })
  const app = await gateway(t, {
    upstreams: { posts: { targets: [hung.url], connections: 1, timeout: '20s', healthCheck: { path: '/health', timeout: '300ms', unhealthyAfter: 1 } } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  const stuck = app.inject({ url: '/api/stuck' })
  for (let i = 0; i < 300 && requests.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  const started = Date.now()
  const round = await Promise.race([app.tollgateProxy.checkHealth(), sleep(3000)])
  t.not(round, 'stalled', 'the round ends')
  t.ok(Date.now() - started < 2000, `bounded by the check's timeout (${Date.now() - started} ms)`)
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.healthy, false, 'the target is out')
  t.same(requests, ['GET /stuck HTTP/1.1', 'GET /health HTTP/1.1'], 'the check had its own connection')
  // A second round opens a new probe connection (the timed-out one was destroyed).
  await app.tollgateProxy.checkHealth()
  t.equal(requests.filter((line) => line.startsWith('GET /health')).length, 2)
  await app.close()
  t.equal((await stuck).statusCode >= 500, true)
})
