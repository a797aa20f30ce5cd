import t from 'tap'
import { request } from 'node:http'
import { gateway, listen, rawUpstream, upstream } from '../helpers/servers.js'

// Audit finding: with every connection of a target busy, a request waited in undici's pool
// queue and its `timeout` only started when it got a connection: with `connections: 2`,
// `timeout: 1s` and a target that never answers, six requests got 504 at 1.5, 1.5, 3, 3,
// 4.5 and 4.5 s, and each one was sent to the hung target in turn.

t.test('a request waiting for a free connection gets 504 within timeout, and is never sent', async (t) => {
  let requests = 0
  const hung = await rawUpstream(t, () => { requests++ /* accepts, never answers */ })
  const app = await gateway(t, {
    upstreams: { posts: { targets: [hung.url], timeout: '1s', connections: 2 } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 6 }, async (_, i) => {
    const res = await app.inject({ url: `/api/${i}` })
    return { status: res.statusCode, ms: Date.now() - started }
  }))
  for (const { status, ms } of answers) {
    t.equal(status, 504)
    // 1 s plus the documented timer slack (at most half a second), with room for a slow machine.
    t.ok(ms < 2500, `504 within the timeout and its slack (${ms} ms)`)
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(requests, 2, 'only the two requests that had a connection reached the target')
  t.ok(hung.connections() <= 2, 'never more than `connections` connections')
  t.same(app.tollgateProxy.upstreams()[0]!.targets[0]!.active, 0, 'nothing is left waiting or in flight')
})

t.test('waiting requests get a connection as one frees, in order, and are answered', async (t) => {
  let open = 0
  let most = 0
  const slow = await upstream(t, (_req, res) => {
    open++
    most = Math.max(most, open)
    setTimeout(() => { open--; res.end('ok') }, 50)
  })
  const app = await gateway(t, {
    upstreams: { posts: { targets: [slow.url], timeout: '10s', connections: 1 } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  const answers = await Promise.all(Array.from({ length: 5 }, async (_, i) => await app.inject({ url: `/api/${i}` })))
  t.same(answers.map((res) => res.statusCode), [200, 200, 200, 200, 200])
  t.same(slow.seen.map((seen) => seen.url), ['/0', '/1', '/2', '/3', '/4'], 'first come, first served')
  t.equal(most, 1, 'one request at a time on one connection')
})

t.test('a client that leaves while waiting for a connection is removed from the line', async (t) => {
  const held: Array<() => void> = []
  const slow = await upstream(t, (_req, res) => { held.push(() => { res.end('ok') }) })
  const app = await gateway(t, {
    upstreams: { posts: { targets: [slow.url], timeout: '10s', connections: 1 } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  const base = await listen(app)
  const first = app.inject({ url: '/api/first' })
  for (let i = 0; i < 300 && slow.hits === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  const client = request(`${base}/api/gone`)
  client.on('error', () => {})
  client.end()
  for (let i = 0; i < 300 && app.tollgateProxy.upstreams()[0]!.targets[0]!.active !== 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.active, 2, 'one in flight, one waiting')
  client.destroy()
  for (let i = 0; i < 100 && app.tollgateProxy.upstreams()[0]!.targets[0]!.active !== 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.active, 1, 'the waiting request left the line')
  held.shift()!()
  t.equal((await first).statusCode, 200)
  t.same(slow.seen.map((seen) => seen.url), ['/first'], 'the abandoned request never reached the upstream')
})
