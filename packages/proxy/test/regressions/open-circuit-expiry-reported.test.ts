import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { tollgateRuntime } from '@tollgate/common'
import tollgateProxy from '../../src/index.js'
import { upstream } from '../helpers/servers.js'

// Audit finding: once an open circuit's `resetAfter` had passed with no traffic, `/readyz`
// counted the target as up (a trial may go) while `tollgate_upstream_target_healthy` (fed by
// the `targetHealth` event) stayed at 0 until a trial request came.

/** A proxy to a target that always answers `status`, its circuit opening at the first failure; `health` records targetHealth events. */
async function breakerOver (t: Test, status: number, resetAfter: string, now: () => number): Promise<{ app: FastifyInstance, runtime: ReturnType<typeof tollgateRuntime>, health: boolean[] }> {
  const down = await upstream(t, (_req, res) => { res.writeHead(status); res.end() })
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  const runtime = tollgateRuntime(app)
  const health: boolean[] = []
  runtime.events.on('targetHealth', (event) => { health.push(event.healthy) })
  await app.register(tollgateProxy, {
    healthChecks: false,
    now,
    upstreams: { posts: { targets: [down.url], circuitBreaker: { failures: 1, resetAfter } } },
    routes: [{ prefix: '/api', upstream: 'posts' }]
  })
  await app.ready()
  return { app, runtime, health }
}

t.test('when resetAfter expires without traffic, targetHealth reports the target healthy, as readiness does', async (t) => {
  let clock = 1_000_000
  const { app, runtime, health } = await breakerOver(t, 503, '200ms', () => clock)
  const ready = async (): Promise<boolean> => (await runtime.checkReadiness()).every((check) => check.ok)

  t.equal((await app.inject({ url: '/api/x' })).statusCode, 503)
  t.same(health, [true, false], 'the open circuit is reported')
  t.equal(await ready(), false)
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.healthy, false)

  clock += 200
  for (let i = 0; i < 300 && health.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(health, [true, false, true], 'resetAfter passed: reported healthy with no request')
  t.equal(await ready(), true, 'and readiness agrees')
  t.equal(app.tollgateProxy.upstreams()[0]!.targets[0]!.healthy, true)

  // The trial fails: the circuit opens again, and both say so.
  t.equal((await app.inject({ url: '/api/x' })).statusCode, 503)
  t.same(health, [true, false, true, false])
  t.equal(await ready(), false)
})

t.test('a clock that has not reached resetAfter keeps the target reported down', async (t) => {
  const { app, health } = await breakerOver(t, 502, '50ms', () => 5_000)
  t.equal((await app.inject({ url: '/api/x' })).statusCode, 502)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(health, [true, false], 'no report before now() reaches openUntil')
})
