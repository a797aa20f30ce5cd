import t from 'tap'
import { gateway, namespace } from './helpers/services.js'
import { sharedBehaviour } from './helpers/suite.js'

t.test('against a real NestJS NATS microservice', async (t) => { sharedBehaviour(t, 'nats') })

t.test('"no responders" is 503 at once; NATS unreachable is 503 too', async (t) => {
  const ns = namespace()
  const app = await gateway(t, {
    upstreams: {
      users: { transport: 'nest-nats', targets: ['nats://127.0.0.1:4222'], timeout: '10s' },
      away: { transport: 'nest-nats', targets: ['nats://127.0.0.1:1'], connectTimeout: '500ms' }
    },
    routes: [
      { prefix: '/u', upstream: 'users', patterns: [{ method: 'GET', pattern: `${ns}nobody` }] },
      { prefix: '/away', upstream: 'away', patterns: [{ method: 'GET', pattern: 'x' }] }
    ]
  })
  const started = Date.now()
  const res = await app.inject({ url: '/u' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.ok(Date.now() - started < 2000, 'without waiting for the timeout')
  const away = await app.inject({ url: '/away' })
  t.equal(away.statusCode, 503)
  const checks = await app.tollgate.checkReadiness()
  t.same(checks.map((c) => [c.name, c.ok]), [['upstream:users', true], ['upstream:away', false]])
})
