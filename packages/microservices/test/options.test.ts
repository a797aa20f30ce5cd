import t from 'tap'
import Fastify from 'fastify'
import tollgateMicroservices, { resolveOptions, type MicroservicesOptions } from '../src/index.js'

const base = (): MicroservicesOptions => ({
  upstreams: { users: { transport: 'nest-tcp', targets: ['tcp://127.0.0.1:3001'] } },
  routes: [{ prefix: '/api/users', upstream: 'users', patterns: [{ method: 'GET', path: '/:id', pattern: 'get_user' }, { method: 'post', event: { cmd: 'created' } }] }]
})

t.test('defaults: 30s timeout, 5s connect, data from params for GET and from the body for POST', async (t) => {
  const resolved = resolveOptions(base())
  t.match(resolved.upstreams.get('users'), { transport: 'nest-tcp', timeout: 30_000, connectTimeout: 5000 })
  t.match(resolved.routes[0]!.patterns, [
    { method: 'GET', url: '/api/users/:id', kind: 'pattern', route: 'get_user', data: 'params', array: false },
    { method: 'POST', url: '/api/users', kind: 'event', route: '{"cmd":"created"}', data: 'body' }
  ])
})

t.test('bad options fail registration with the option path named', async (t) => {
  const cases: Array<[(o: MicroservicesOptions) => void, RegExp]> = [
    [(o) => { (o.upstreams.users as { transport: string }).transport = 'http' }, /upstreams\.users\.transport: must be one of/],
    [(o) => { o.upstreams.users!.targets = ['http://127.0.0.1:1'] }, /upstreams\.users\.targets\[0\]: .* must use tcp/],
    [(o) => { o.upstreams.users!.targets = ['tcp://127.0.0.1'] }, /needs a port/],
    [(o) => { o.upstreams.users = { transport: 'nest-redis', targets: ['redis://a:1', 'redis://b:1'] } }, /exactly one target/],
    [(o) => { o.upstreams.users!.timeout = 'soon' }, /upstreams\.users\.timeout: invalid duration/],
    [(o) => { o.routes[0]!.upstream = 'nope' }, /routes\[0\]\.upstream: unknown upstream "nope" \(known: users\)/],
    [(o) => { o.routes[0]!.patterns[0]!.event = 'x' }, /routes\[0\]\.patterns\[0\]: set exactly one of pattern and event/],
    [(o) => { o.routes[0]!.patterns[0]!.path = '/../x' }, /routes\[0\]\.patterns\[0\]\.path: must be a path/],
    [(o) => { o.routes[0]!.patterns[0]!.method = 'TRACE' }, /routes\[0\]\.patterns\[0\]\.method: must be one of/],
    [(o) => { o.routes[0]!.patterns[0]!.data = 'headers' as never }, /routes\[0\]\.patterns\[0\]\.data: must be one of body, params, query, envelope/],
    [(o) => { o.routes[0]!.patterns[0]!.pattern = {} }, /an object pattern needs 1 to 20 keys/],
    [(o) => { o.routes[0]!.patterns.push({ method: 'GET', path: '/:name', pattern: 'x' }) }, /routes\[0\]\.patterns\[2\]: GET \/api\/users\/:name is already mapped by routes\[0\]\.patterns\[0\]/],
    [(o) => { o.routes[0]!.methods = ['GET'] }, /routes\[0\]\.patterns\[1\]\.method: POST is not in the route's methods/],
    [(o) => { (o.routes[0] as unknown as Record<string, unknown>).rewritePrefix = '/x' }, /routes\[0\]\.rewritePrefix: unknown option/]
  ]
  for (const [change, message] of cases) {
    const options = base()
    change(options)
    t.throws(() => resolveOptions(options), { code: 'TOLLGATE_MICROSERVICES_INVALID_OPTION', message }, String(message))
  }
  const app = Fastify()
  const options = base()
  options.routes[0]!.upstream = 'nope'
  app.register(tollgateMicroservices, options)
  await t.rejects(async () => { await app.ready() }, { code: 'TOLLGATE_MICROSERVICES_INVALID_OPTION' })
})
