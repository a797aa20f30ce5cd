import t from 'tap'
import { countingRelay, freePort, gateway, service } from './helpers/services.js'
import { sharedBehaviour } from './helpers/suite.js'

t.test('against a real NestJS TCP microservice', async (t) => { sharedBehaviour(t, 'tcp') })

t.test('200 concurrent requests share one connection, each answered with its own reply', async (t) => {
  const svc = await service(t, 'tcp')
  const relay = await countingRelay(t, svc.port)
  const app = await gateway(t, {
    upstreams: { users: { transport: 'nest-tcp', targets: [`tcp://127.0.0.1:${relay.port}`] } },
    routes: [{ prefix: '/api/users', upstream: 'users', patterns: [{ method: 'GET', path: '/:id', pattern: `${svc.ns}get_user` }] }]
  })
  const ids = Array.from({ length: 200 }, (_, i) => `${i}-ü`)
  const results = await Promise.all(ids.map(async (id) => await app.inject({ url: `/api/users/${encodeURIComponent(id)}` })))
  t.same(results.map((res) => res.statusCode), ids.map(() => 200))
  t.same(results.map((res) => res.json().id), ids, 'every reply matches its request')
  t.equal(relay.connections(), 1, 'one multiplexed connection')
})

t.test('a refused connection is 503 with Retry-After; a connection lost mid-call is 502', async (t) => {
  const closed = await freePort()
  const svc = await service(t, 'tcp')
  const app = await gateway(t, {
    upstreams: {
      down: { transport: 'nest-tcp', targets: [`tcp://127.0.0.1:${closed}`], timeout: '5s' },
      users: { transport: 'nest-tcp', targets: [`tcp://127.0.0.1:${svc.port}`], timeout: '20s' }
    },
    routes: [
      { prefix: '/down', upstream: 'down', patterns: [{ method: 'GET', pattern: 'anything' }] },
      { prefix: '/slow', upstream: 'users', patterns: [{ method: 'GET', pattern: `${svc.ns}slow`, data: 'query' }] }
    ]
  })
  const refused = await app.inject({ url: '/down' })
  t.equal(refused.statusCode, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.notMatch(refused.body, String(closed), 'no address in the answer')
  const checks = await app.tollgate.checkReadiness()
  t.same(checks.find((c) => c.name === 'upstream:down'), { name: 'upstream:down', ok: false, message: 'no target accepts connections' })

  const inFlight = app.inject({ url: '/slow?ms=5000' })
  await new Promise((resolve) => setTimeout(resolve, 500))
  await svc.kill()
  const res = await inFlight
  t.equal(res.statusCode, 502)
})

t.test('a second target takes the requests when the first refuses', async (t) => {
  const closed = await freePort()
  const svc = await service(t, 'tcp')
  const app = await gateway(t, {
    upstreams: { users: { transport: 'nest-tcp', targets: [`tcp://127.0.0.1:${closed}`, `tcp://127.0.0.1:${svc.port}`] } },
    routes: [{ prefix: '/u', upstream: 'users', patterns: [{ method: 'GET', path: '/:id', pattern: `${svc.ns}get_user` }] }]
  })
  for (let i = 0; i < 4; i++) t.equal((await app.inject({ url: `/u/${i}` })).statusCode, 200)
})
