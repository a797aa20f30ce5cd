import t from 'tap'
import { gateway, service } from './helpers/services.js'
import { eventually } from './helpers/suite.js'

// Issue 11 on pattern routes: request validation before anything is sent, and response
// shaping of the reply, against a real NestJS TCP microservice.
t.test('validation and shaping on message-pattern routes', async (t) => {
  const svc = await service(t, 'tcp')
  const ns = svc.ns
  const app = await gateway(t, {
    upstreams: { users: { transport: 'nest-tcp', targets: [`tcp://127.0.0.1:${svc.port}`], timeout: '20s' } },
    routes: [{
      prefix: '/api/users',
      upstream: 'users',
      patterns: [
        {
          method: 'GET',
          path: '/:id',
          pattern: `${ns}get_user`,
          validate: { params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } }, querystring: { type: 'object', properties: { expand: { enum: ['roles'] } } } },
          // get_user answers { id, name, query }: the public contract is id and name only.
          response: { 200: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } } }
        },
        { method: 'GET', path: '/list/all', pattern: `${ns}stream`, array: true, response: { '2xx': { type: 'array', items: { type: 'integer' } } } },
        {
          method: 'POST',
          path: '/',
          event: `${ns}user_created`,
          validate: {
            body: { type: 'object', required: ['email'], additionalProperties: false, properties: { email: { type: 'string', format: 'email' }, tags: { type: 'array', items: { type: 'string' } } } },
            headers: { type: 'object', required: ['X-Tenant'], properties: { 'X-Tenant': { type: 'string', pattern: '^[a-z]+$' } } }
          }
        },
        { method: 'GET', path: '/events/seen', pattern: `${ns}events_seen` }
      ]
    }]
  })

  await t.test('a shaped reply holds exactly the schema\'s fields', async (t) => {
    const res = await app.inject({ url: '/api/users/7?expand=roles' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(res.json(), { id: '7', name: 'user 7' }, 'the service\'s `query` field is not passed on')
    t.notMatch(res.body, /expand/)
  })

  await t.test('a stream reply is shaped as the array it is answered as', async (t) => {
    const res = await app.inject({ url: '/api/users/list/all' })
    t.equal(res.statusCode, 200)
    t.same(res.json(), [1, 2, 3])
  })

  await t.test('invalid params and query get 400 naming every problem', async (t) => {
    const res = await app.inject({ url: '/api/users/0?expand=everything' })
    t.equal(res.statusCode, 400)
    const body = res.json()
    t.equal(body.code, 'TOLLGATE_MICROSERVICES_INVALID_REQUEST')
    t.match(body.message, /params\.id: must be >= 1/)
    t.match(body.message, /querystring\.expand: must be equal to one of the allowed values/)
    const word = await app.inject({ url: '/api/users/abc' })
    t.equal(word.statusCode, 400)
    t.match(word.json().message, /^params\.id: must be integer$/)
  })

  await t.test('an invalid body or header is refused and the event never reaches the service', async (t) => {
    const bad = await app.inject({ method: 'POST', url: '/api/users', headers: { 'x-tenant': 'acme' }, payload: { email: 'not-an-email', tags: [1], admin: true } })
    t.equal(bad.statusCode, 400)
    const message: string = bad.json().message
    t.match(message, /body\.email: must match format "email"/)
    t.match(message, /body\.tags\[0\]: must be string/)
    t.match(message, /body\.admin: is not allowed/)
    const noTenant = await app.inject({ method: 'POST', url: '/api/users', payload: { email: 'a@example.com' } })
    t.equal(noTenant.statusCode, 400)
    t.match(noTenant.json().message, /headers\.x-tenant: is required/)
    const missing = await app.inject({ method: 'POST', url: '/api/users', headers: { 'x-tenant': 'acme' } })
    t.equal(missing.statusCode, 400, 'no body at all is refused too')

    const good = await app.inject({ method: 'POST', url: '/api/users', headers: { 'x-tenant': 'acme' }, payload: { email: 'a@example.com', tags: ['x'] } })
    t.equal(good.statusCode, 202)
    t.ok(await eventually(async () => (await app.inject({ url: '/api/users/events/seen' })).json().length === 1), 'the valid event arrived')
    t.same((await app.inject({ url: '/api/users/events/seen' })).json(), [{ email: 'a@example.com', tags: ['x'] }], 'and only the valid one')
  })
})

t.test('bad validate and response options fail registration, naming the option', async (t) => {
  const upstreams = { users: { transport: 'nest-tcp' as const, targets: ['tcp://127.0.0.1:1'] } }
  const attempt = async (pattern: Record<string, unknown>): Promise<unknown> => {
    const { default: Fastify } = await import('fastify')
    const { default: plugin } = await import('../src/index.js')
    const app = Fastify()
    t.teardown(async () => { await app.close() })
    app.register(plugin, { upstreams, routes: [{ prefix: '/api', upstream: 'users', patterns: [{ method: 'POST', ...pattern } as never] }] })
    return await app.ready()
  }
  await t.rejects(attempt({ pattern: 'p', validate: { body: { type: 'objekt' } } }), /routes\[0\]\.patterns\[0\]\.validate\.body: invalid JSON Schema/)
  await t.rejects(attempt({ pattern: 'p', validate: { cookies: {} } }), /routes\[0\]\.patterns\[0\]\.validate\.cookies: unknown key/)
  await t.rejects(attempt({ event: 'e', response: { 200: { type: 'object' } } }), /routes\[0\]\.patterns\[0\]\.response: an event is answered 202 with no body/)
  await t.rejects(attempt({ pattern: 'p', response: { 201: { type: 'object' } } }), /routes\[0\]\.patterns\[0\]\.response: must hold exactly one schema, under 200 \(or 2xx\)/)
  await t.rejects(attempt({ pattern: 'p', response: { 200: 'nope' } }), /routes\[0\]\.patterns\[0\]\.response\.200: must be a JSON Schema object/)
})
