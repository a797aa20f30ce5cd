import t from 'tap'
import type { Socket } from 'node:net'
import Fastify from 'fastify'
import { tollgateRuntime, type TollgateEventMap } from '@tollgate/common'
import tollgateProxy, { type ProxyOptions } from '../src/index.js'
import { closedPort, gateway, rawUpstream, upstream } from './helpers/servers.js'

type Test = Parameters<typeof upstream>[0]

/** A gateway with every runtime event recorded. */
async function observed (t: Test, options: ProxyOptions): Promise<{ app: Awaited<ReturnType<typeof gateway>>, events: Array<[string, unknown]> }> {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  const events: Array<[string, unknown]> = []
  const runtime = tollgateRuntime(app)
  for (const name of ['upstreamResponse', 'upstreamRetry', 'circuitState', 'targetHealth'] as const) {
    runtime.events.on(name, (event: TollgateEventMap[typeof name]) => { events.push([name, event]) })
  }
  await app.register(tollgateProxy, { healthChecks: false, ...options })
  await app.ready()
  return { app, events }
}

t.test('round-robin honours weights', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [a.url, { url: b.url, weight: 2 }] } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  for (let i = 0; i < 30; i++) t.equal((await app.inject({ url: '/api' })).statusCode, 200)
  t.equal(a.hits, 10)
  t.equal(b.hits, 20)
})

t.test('random spreads by weight and never picks a zero-share target', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [a.url, { url: b.url, weight: 3 }], balance: 'random' } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  for (let i = 0; i < 200; i++) await app.inject({ url: '/api' })
  t.equal(a.hits + b.hits, 200)
  t.ok(a.hits > 10 && b.hits > a.hits, `weighted spread (a=${a.hits}, b=${b.hits})`)
})

t.test('least-connections sends new requests to the target with fewer requests in flight', async (t) => {
  const held: Array<() => void> = []
  const slow = await upstream(t, (_req, res) => { held.push(() => { res.end('slow') }) })
  const fast = await upstream(t)
  const app = await gateway(t, {
    upstreams: { posts: { targets: [slow.url, fast.url], balance: 'least-connections' } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  // Park two requests: with nothing in flight the first may go anywhere; the second goes to
  // the other target. Whichever of them sits on slow stays in flight.
  const parked = [app.inject({ url: '/api/1' }), app.inject({ url: '/api/2' })]
  for (let i = 0; i < 300 && slow.hits === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(slow.hits, 1, 'one request is held by the slow target')
  const before = fast.hits
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ url: '/api/n' })).body.length > 0, true)
  t.equal(fast.hits - before, 5, 'every later request avoided the busy target')
  t.equal(slow.hits, 1)
  for (const release of held) release()
  for (const res of await Promise.all(parked)) t.equal(res.statusCode, 200)
})

t.test('a refused connection is retried on another target for GET', async (t) => {
  const dead = await closedPort()
  const live = await upstream(t)
  const { app, events } = await observed(t, {
    upstreams: { posts: { targets: [dead, live.url], retries: 1 } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  for (let i = 0; i < 4; i++) {
    const res = await app.inject({ url: '/api/x' })
    t.equal(res.statusCode, 200)
  }
  t.equal(live.hits, 4)
  for (const seen of live.seen) t.equal(seen.headers.host, new URL(live.url).host, 'a retry carries its own target\'s host')
  t.equal(events.filter(([name]) => name === 'upstreamRetry').length, 2, 'the two requests that met the dead target were retried')
  t.same(events.find(([name]) => name === 'upstreamRetry')![1], { upstream: 'posts', target: live.url })
})

t.test('a reset before headers is retried on another target, at most retries + 1 attempts in all', async (t) => {
  const resetA = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const resetB = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const resetC = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const app = await gateway(t, {
    upstreams: { posts: { targets: [resetA.url, resetB.url, resetC.url], retries: 1 } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  const res = await app.inject({ url: '/api/x' })
  t.equal(res.statusCode, 502)
  t.equal(resetA.connections() + resetB.connections() + resetC.connections(), 2, 'exactly retries + 1 attempts')
  t.ok(resetA.connections() <= 1 && resetB.connections() <= 1 && resetC.connections() <= 1, 'each on a different target')
})

t.test('with one target, a retry goes to the same one (there is no other)', async (t) => {
  const reset = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const app = await gateway(t, { upstreams: { posts: { targets: [reset.url], retries: 2 } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  t.equal((await app.inject({ url: '/api/x' })).statusCode, 502)
  t.equal(reset.connections(), 3)
})

t.test('retries 0 (the default) tries once', async (t) => {
  const reset = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const other = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [reset.url, other.url] } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  t.equal((await app.inject({ url: '/api/x' })).statusCode, 502)
  t.equal(reset.connections() + other.hits, 1)
})

t.test('POST and PATCH hit the upstream exactly once in every failure mode, whatever retries says', async (t) => {
  const modes: Record<string, (socket: Socket) => void> = {
    reset: (socket) => { socket.resetAndDestroy() },
    close: (socket) => { socket.end() },
    garbage: (socket) => { socket.end('garbage\r\n\r\n') },
    '503': (socket) => { socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n') },
    '500': (socket) => { socket.end('HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n') },
    hang: () => {}
  }
  for (const [mode, behaviour] of Object.entries(modes)) {
    for (const method of ['POST', 'PATCH'] as const) {
      const first = await rawUpstream(t, behaviour)
      const second = await rawUpstream(t, behaviour)
      const app = await gateway(t, {
        upstreams: { posts: { targets: [first.url, second.url], retries: 3, timeout: '200ms' } },
        routes: [{ prefix: '/api', upstream: 'posts' }]
      })
      const res = await app.inject({ method, url: '/api/pay', payload: { amount: 1 } })
      t.ok(res.statusCode >= 500, `${method} ${mode}: ${res.statusCode}`)
      t.equal(first.connections() + second.connections(), 1, `${method} ${mode}: one attempt`)
      await app.close()
    }
  }
  // And with the connection refused: no attempt reaches any upstream, and none is repeated elsewhere.
  const dead = await closedPort()
  const live = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [dead, live.url], retries: 3, balance: 'round-robin' } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const statuses: number[] = []
  for (let i = 0; i < 2; i++) statuses.push((await app.inject({ method: 'POST', url: '/api/pay', payload: 'x' })).statusCode)
  t.same(statuses.sort(), [200, 503], 'the POST that met the dead target got 503, not a retry')
  t.equal(live.hits, 1)
})

t.test('a GET that sends a body is not retried', async (t) => {
  const reset = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const other = await rawUpstream(t, (socket) => { socket.resetAndDestroy() })
  const app = await gateway(t, { upstreams: { posts: { targets: [reset.url, other.url], retries: 2 } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({ method: 'DELETE', url: '/api/x', payload: 'body' })
  t.equal(res.statusCode, 502)
  t.equal(reset.connections() + other.connections(), 1)
})

t.test('a 5xx answer is relayed, never retried', async (t) => {
  const failing = await upstream(t, (_req, res) => { res.writeHead(503); res.end('busy') })
  const other = await upstream(t)
  const app = await gateway(t, { upstreams: { posts: { targets: [failing.url, other.url], retries: 3 } }, routes: [{ prefix: '/api', upstream: 'posts' }] })
  const res = await app.inject({ url: '/api/x' })
  t.equal(res.statusCode, 503)
  t.equal(res.body, 'busy')
  t.equal(failing.hits + other.hits, 1)
})

t.test('the circuit breaker ejects a failing target for resetAfter, then lets one trial through', async (t) => {
  let clock = 1_000_000
  const dead = await closedPort()
  const live = await upstream(t)
  const { app, events } = await observed(t, {
    upstreams: { posts: { targets: [dead, live.url], circuitBreaker: { failures: 2, resetAfter: '30s' } } },
    routes: [{ prefix: '/api', upstream: 'posts' }],
    now: () => clock
  })
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) statuses.push((await app.inject({ url: '/api/x' })).statusCode)
  t.same(statuses, [503, 200, 503, 200], 'round-robin meets the dead target twice')
  t.same(events.filter(([name]) => name === 'circuitState').map(([, e]) => e), [{ upstream: 'posts', target: dead, state: 'open' }])
  t.same(events.filter(([name]) => name === 'targetHealth').at(-1)![1], { upstream: 'posts', target: dead, healthy: false })
  for (let i = 0; i < 6; i++) t.equal((await app.inject({ url: '/api/x' })).statusCode, 200, 'ejected: every request goes to the live target')
  t.equal(live.hits, 8)
  t.same(app.tollgateProxy.upstreams()[0]!.targets.map((target) => target.circuit), ['open', 'closed'])

  clock += 30_000
  const trials = [(await app.inject({ url: '/api/x' })).statusCode, (await app.inject({ url: '/api/x' })).statusCode]
  t.same(trials.sort(), [200, 503], 'after resetAfter one trial goes to the dead target')
  t.same(events.filter(([name]) => name === 'circuitState').map(([, e]) => (e as { state: string }).state), ['open', 'half-open', 'open'])
  for (let i = 0; i < 4; i++) t.equal((await app.inject({ url: '/api/x' })).statusCode, 200, 'and it is ejected again at once')
})

t.test('a half-open trial that succeeds closes the circuit', async (t) => {
  let clock = 0
  let failing = true
  const flaky = await upstream(t, (_req, res) => { res.writeHead(failing ? 502 : 200); res.end() })
  const { app, events } = await observed(t, {
    upstreams: { posts: { targets: [flaky.url], circuitBreaker: { failures: 3, resetAfter: 1000 } } },
    routes: [{ prefix: '/api', upstream: 'posts' }],
    now: () => clock
  })
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/api' })).statusCode, 502)
  const refused = await app.inject({ url: '/api' })
  t.equal(refused.statusCode, 503, 'no healthy target')
  t.equal(refused.headers['retry-after'], '1')
  t.equal(flaky.hits, 3)
  t.same((await app.tollgate.checkReadiness()).map((check) => check.ok), [false], 'readiness fails with the only target ejected')
  clock += 1000
  failing = false
  t.equal((await app.inject({ url: '/api' })).statusCode, 200)
  t.same(events.filter(([name]) => name === 'circuitState').map(([, e]) => (e as { state: string }).state), ['open', 'half-open', 'closed'])
  t.same((await app.tollgate.checkReadiness()).map((check) => check.ok), [true])
})

t.test('active health checks take a target out after unhealthyAfter failures and back after healthyAfter passes', async (t) => {
  let sick = false
  const a = await upstream(t, (req, res) => {
    if (req.url === '/health') res.writeHead(sick ? 500 : 200)
    res.end('a')
  })
  const b = await upstream(t, (_req, res) => { res.end('b') })
  const { app, events } = await observed(t, {
    upstreams: { posts: { targets: [a.url, b.url], healthCheck: { path: '/health', interval: '1h', unhealthyAfter: 2, healthyAfter: 2 } } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  sick = true
  await app.tollgateProxy.checkHealth()
  t.same(app.tollgateProxy.upstreams()[0]!.targets.map((target) => target.healthy), [true, true], 'one failure is not enough')
  await app.tollgateProxy.checkHealth()
  t.same(app.tollgateProxy.upstreams()[0]!.targets.map((target) => target.healthy), [false, true])
  t.same(events.filter(([name]) => name === 'targetHealth').at(-1)![1], { upstream: 'posts', target: a.url, healthy: false })
  const bodies: string[] = []
  for (let i = 0; i < 4; i++) bodies.push((await app.inject({ url: '/api/x' })).body)
  t.same(bodies, ['b', 'b', 'b', 'b'])
  sick = false
  await app.tollgateProxy.checkHealth()
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.healthy, false, 'one pass is not enough with healthyAfter 2')
  await app.tollgateProxy.checkHealth()
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.healthy, true)
  const again: string[] = []
  for (let i = 0; i < 4; i++) again.push((await app.inject({ url: '/api/x' })).body)
  t.same(again.sort(), ['a', 'a', 'b', 'b'])
})

t.test('no healthy target: 503 with Retry-After, readiness names the upstream, and the upstream is not contacted', async (t) => {
  const a = await upstream(t, (_req, res) => { res.writeHead(503); res.end() })
  const { app } = await observed(t, {
    upstreams: { posts: { targets: [a.url], healthCheck: { path: '/health', interval: '5s', unhealthyAfter: 1 } } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  await app.tollgateProxy.checkHealth()
  const hits = a.hits
  const res = await app.inject({ url: '/api/x' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.equal(a.hits, hits)
  t.same(await app.tollgate.checkReadiness(), [{ name: 'upstream:posts', ok: false, message: 'no healthy target' }])
})

t.test('health checks run on their own once the app is ready, and stop when it closes', async (t) => {
  const a = await upstream(t)
  const app = Fastify()
  await app.register(tollgateProxy, {
    upstreams: { posts: { targets: [a.url], healthCheck: { path: '/health', interval: '20ms' } } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  await app.ready()
  for (let i = 0; i < 200 && a.hits < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.ok(a.hits >= 2, 'checked more than once')
  t.equal(a.seen[0]!.url, '/health')
  await app.close()
  const after = a.hits
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(a.hits <= after + 1, 'no more checks after close')
})
