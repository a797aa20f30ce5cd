// Found by a black-box audit of pattern routes:
// - a body too large for one NATS message (the server's max_payload, 1 MiB by default, with
//   the NestJS wrapper around the data) got 503 with Retry-After, so clients retried a request
//   that can never succeed;
// - a `__proto__` key in a JSON body was parsed and sent on (the plugin had its own parser,
//   without Fastify's prototype-poisoning check) where HTTP routes refuse it;
// - `/users/` matched `/users/:id` and called the service with an empty id.
import t from 'tap'
import Fastify from 'fastify'
import tollgateMicroservices from '../../src/index.js'
import { service, targetFor } from '../helpers/services.js'
import { routesFor, setup } from '../helpers/suite.js'

t.test('a body over NATS max_payload gets 413, not a 503 to retry', async (t) => {
  const svc = await service(t, 'nats')
  const app = Fastify({ bodyLimit: 4 * 1024 * 1024 })
  t.teardown(async () => { await app.close() })
  await app.register(tollgateMicroservices, {
    upstreams: { users: { transport: 'nest-nats', targets: [targetFor('nats', svc)], timeout: '10s' }, slowpoke: { transport: 'nest-nats', targets: [targetFor('nats', svc)], timeout: '1s' } },
    routes: routesFor(svc.ns)
  })
  const small = await app.inject({ method: 'POST', url: '/api/users/echo', payload: { text: 'x'.repeat(1000) } })
  t.equal(small.statusCode, 200, 'a body that fits goes through')
  const large = await app.inject({ method: 'POST', url: '/api/users/echo', payload: { text: 'x'.repeat(1_100_000) } })
  t.equal(large.statusCode, 413)
  t.equal(large.json().code, 'TOLLGATE_MICROSERVICES_PAYLOAD_TOO_LARGE')
  t.equal(large.headers['retry-after'], undefined, 'nothing to retry')
})

t.test('a JSON body with __proto__ is refused as on any Fastify route; an empty path parameter is no resource', async (t) => {
  const { app, responses } = await setup(t, 'tcp')
  const poisoned = await app.inject({ method: 'POST', url: '/api/users/echo', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"isAdmin":true}}' })
  t.equal(poisoned.statusCode, 400)
  const empty = await app.inject({ url: '/api/users/' })
  t.equal(empty.statusCode, 404, 'GET /api/users/ is not GET /api/users/:id with id ""')
  const named = await app.inject({ url: '/api/users/7' })
  t.equal(named.statusCode, 200, 'a named one still is')
  t.equal(responses.length, 1, 'only the named one reached the service')
})
