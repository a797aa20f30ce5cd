import t from 'tap'
import { gateway, upstream } from '../helpers/servers.js'

// Audit finding: `least-connections` broke ties (equal in-flight requests per weight) by
// rotating through the targets, so requests that never overlap (every target idle) were
// spread evenly and `weight` was ignored: [A, {B, weight 2}, C] got 134/133/133 of 400.

t.test('least-connections honours weights when requests do not overlap', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const c = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [a.url, { url: b.url, weight: 2 }, c.url], balance: 'least-connections' } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  for (let i = 0; i < 40; i++) t.equal((await app.inject({ url: '/api/x' })).statusCode, 200)
  t.same([a.hits, b.hits, c.hits], [10, 20, 10])
})

t.test('least-connections still prefers the target with fewer requests in flight per weight', async (t) => {
  const held: Array<() => void> = []
  const heavy = await upstream(t, (_req, res) => { held.push(() => { res.end('held') }) })
  const light = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [{ url: heavy.url, weight: 3 }, light.url], balance: 'least-connections' } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  // Idle: the weighted tie-break sends the first request to the heavier target, where it stays.
  const parked = app.inject({ url: '/api/parked' })
  for (let i = 0; i < 300 && heavy.hits === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(heavy.hits, 1)
  // heavy: 1 in flight / weight 3 > light: 0 / 1, so the next ones go to light.
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/api/n' })).statusCode, 200)
  t.equal(light.hits, 3)
  held.shift()!()
  t.equal((await parked).statusCode, 200)
})
