import t from 'tap'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import tollgateMetrics, { DEFAULT_BUCKETS, errors, resolveOptions, type TollgateMetricsOptions } from '../src/index.js'

t.test('defaults', async (t) => {
  t.same(resolveOptions(), {
    path: '/metrics',
    port: undefined,
    host: '127.0.0.1',
    registry: undefined,
    defaultMetrics: true,
    requestLogs: true,
    requestIdHeader: 'x-request-id',
    buckets: DEFAULT_BUCKETS
  })
  t.ok(Object.isFrozen(resolveOptions({})))
  t.equal(DEFAULT_BUCKETS[0], 0.0005)
  t.equal(DEFAULT_BUCKETS.at(-1), 10)
})

t.test('valid options are kept', async (t) => {
  const registry = new Registry()
  t.match(resolveOptions({ path: '/prom', port: 9464, host: '0.0.0.0', registry, defaultMetrics: false, requestLogs: false, requestIdHeader: 'X-Trace-Id', buckets: [0.1, 1] }), {
    path: '/prom', port: 9464, host: '0.0.0.0', defaultMetrics: false, requestLogs: false, requestIdHeader: 'x-trace-id', buckets: [0.1, 1]
  })
  t.equal(resolveOptions({ registry }).registry, registry)
  t.equal(resolveOptions({ path: false, requestIdHeader: false }).path, false)
  t.doesNotThrow(() => resolveOptions({ prefix: '/x' } as TollgateMetricsOptions), 'Fastify\'s register options pass')
})

const BAD: Array<[string, unknown, RegExp]> = [
  ['path', 'metrics', /^@tollgate\/metrics: path must be/],
  ['path', '/m?x=1', /path must be/],
  ['path', true, /path must be/],
  ['port', -1, /port must be an integer/],
  ['port', 70000, /port must be an integer/],
  ['port', '9464', /port must be an integer/],
  ['registry', {}, /registry must be a prom-client Registry/],
  ['defaultMetrics', 'yes', /defaultMetrics must be a boolean/],
  ['requestLogs', 1, /requestLogs must be a boolean/],
  ['requestIdHeader', 'bad header', /requestIdHeader must be/],
  ['requestIdHeader', true, /requestIdHeader must be/],
  ['buckets', [], /buckets must be a non-empty array/],
  ['buckets', [1, 0.5], /buckets\[1\] must be/],
  ['buckets', [0, 1], /buckets\[0\] must be/],
  ['buckets', [0.1, Number.POSITIVE_INFINITY], /buckets\[1\] must be/],
  ['bukets', [1], /bukets: unknown option/]
]

t.test('a bad option is refused with a message naming it', async (t) => {
  for (const [name, value, message] of BAD) {
    t.throws(() => resolveOptions({ [name]: value } as TollgateMetricsOptions), { code: 'TOLLGATE_METRICS_INVALID_OPTION', message }, `${name}: ${JSON.stringify(value)}`)
  }
  t.throws(() => resolveOptions({ port: 9464, path: false }), { message: /port is set but path is false/ })
  t.throws(() => resolveOptions({ host: '0.0.0.0' }), { message: /host is only meaningful with port/ })
  t.throws(() => resolveOptions({ port: 1, host: '' }), { message: /host must be a non-empty string/ })
  t.throws(() => resolveOptions(null as unknown as TollgateMetricsOptions), { message: /options must be an object/ })
  t.throws(() => resolveOptions({ path: 'x' }), errors.InvalidOptionError, 'instanceof the exported error')
})

t.test('a bad option fails app.ready(), not the first request', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  void app.register(tollgateMetrics, { port: 'nine' } as unknown as TollgateMetricsOptions)
  await t.rejects(async () => { await app.ready() }, { code: 'TOLLGATE_METRICS_INVALID_OPTION', message: /port must be an integer/ })
})

t.test('a bad config.metrics on a route fails app.ready(), naming the route', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tollgateMetrics)
  t.throws(() => {
    app.get('/x', { config: { metrics: 'no' as unknown as boolean } }, async () => 'x')
  }, { code: 'TOLLGATE_METRICS_INVALID_ROUTE_CONFIG', message: /route GET \/x: config\.metrics must be a boolean \(got "no"\)/ })
})

t.test('the plugin is named for dependency checks and decorates the app', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tollgateMetrics, { defaultMetrics: false })
  await app.ready()
  t.ok(app.hasPlugin('@tollgate/metrics'))
  t.ok(app.hasDecorator('tollgateMetrics'))
  t.ok(app.hasDecorator('tollgate'), 'the shared runtime exists')
  t.equal(app.tollgateMetrics.address(), null, 'no separate listener by default')
  t.match(await app.tollgateMetrics.scrape(), /tollgate_requests_total/)
})

t.test('the error codes users can match on', async (t) => {
  t.equal(new errors.InvalidOptionError('x').code, 'TOLLGATE_METRICS_INVALID_OPTION')
  t.equal(new errors.InvalidRouteConfigError('GET /', '1').code, 'TOLLGATE_METRICS_INVALID_ROUTE_CONFIG')
  t.equal(new errors.RegistryConflictError('n').code, 'TOLLGATE_METRICS_REGISTRY_CONFLICT')
  t.equal(new errors.ListenError('h:1').code, 'TOLLGATE_METRICS_LISTEN_FAILED')
  const cause = new Error('collector broke')
  const scrape = new errors.ScrapeError({ cause })
  t.equal(scrape.code, 'TOLLGATE_METRICS_SCRAPE_FAILED')
  t.equal(scrape.cause, cause)
  t.equal(scrape.statusCode, 500)
})

t.test('registered twice on one app: a coded error saying so, not Fastify\'s bare decorator clash', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tollgateMetrics)
  await t.rejects(async () => { await app.register(tollgateMetrics) }, { code: 'TOLLGATE_METRICS_INVALID_OPTION', message: /already registered on this instance/ })
})
