import t from 'tap'
import { Redis } from 'ioredis'
import { gateway, namespace, service } from './helpers/services.js'
import { sharedBehaviour } from './helpers/suite.js'

t.test('against a real NestJS Redis microservice', async (t) => { sharedBehaviour(t, 'redis') })

t.test('replies on <channel>.reply meant for other requests are ignored; a PUBLISH reaching nobody is 503 at once', async (t) => {
  const ns = namespace()
  const channel = `${ns}fake_service`
  // A stand-in service that first answers with a stranger's id, then with the right one.
  const sub = new Redis('redis://127.0.0.1:6379')
  const pub = new Redis('redis://127.0.0.1:6379')
  t.teardown(() => { sub.disconnect(); pub.disconnect() })
  await sub.subscribe(channel)
  sub.on('message', (_channel: string, message: string) => {
    const packet = JSON.parse(message) as { id: string, data: unknown }
    void pub.publish(`${channel}.reply`, JSON.stringify({ id: 'someone-else', response: 'not yours', isDisposed: true }))
      .then(async () => await pub.publish(`${channel}.reply`, JSON.stringify({ id: packet.id, response: { yours: packet.data }, isDisposed: true })))
  })
  const app = await gateway(t, {
    upstreams: { fake: { transport: 'nest-redis', targets: ['redis://127.0.0.1:6379'], timeout: '10s' } },
    routes: [{
      prefix: '/fake',
      upstream: 'fake',
      patterns: [
        { method: 'GET', path: '/:n', pattern: channel },
        { method: 'POST', path: '/nobody', event: `${ns}nobody_listens` },
        { method: 'GET', path: '/nobody', pattern: `${ns}nobody_listens` }
      ]
    }]
  })
  const results = await Promise.all([1, 2, 3].map(async (n) => await app.inject({ url: `/fake/${n}` })))
  t.same(results.map((res) => res.json()), [1, 2, 3].map((n) => ({ yours: { n: String(n) } })))

  const started = Date.now()
  const nobody = await app.inject({ url: '/fake/nobody' })
  t.equal(nobody.statusCode, 503)
  t.equal(nobody.headers['retry-after'], '5')
  t.ok(Date.now() - started < 2000, 'without waiting for the timeout')
  t.equal((await app.inject({ method: 'POST', url: '/fake/nobody', payload: {} })).statusCode, 503, 'an event nobody subscribes to is 503 too')
})

t.test('readiness names the channels without a subscriber', async (t) => {
  const svc = await service(t, 'redis')
  const app = await gateway(t, {
    upstreams: { users: { transport: 'nest-redis', targets: ['redis://127.0.0.1:6379'] } },
    routes: [{ prefix: '/u', upstream: 'users', patterns: [{ method: 'GET', pattern: `${svc.ns}whoami` }, { method: 'POST', pattern: `${svc.ns}nobody` }] }]
  })
  const check = (await app.tollgate.checkReadiness()).find((c) => c.name === 'upstream:users')
  t.same(check, { name: 'upstream:users', ok: false, message: `no subscriber on "${svc.ns}nobody"` })
})

t.test('Redis itself unreachable is 503 with Retry-After', async (t) => {
  const app = await gateway(t, {
    upstreams: { users: { transport: 'nest-redis', targets: ['redis://127.0.0.1:1'], connectTimeout: '500ms' } },
    routes: [{ prefix: '/u', upstream: 'users', patterns: [{ method: 'GET', pattern: 'x' }, { method: 'POST', event: 'y' }] }]
  })
  const res = await app.inject({ url: '/u' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.equal((await app.inject({ method: 'POST', url: '/u', payload: {} })).statusCode, 503)
})
