import t from 'tap'
import { Registry } from 'prom-client'
import { tollgateRuntime } from '@tollgate/common'
import { build, labelValues, sample } from './helpers/app.js'
import { METRIC_NAMES } from '../src/index.js'

const CONTRACT: Array<[string, string, string[]]> = [
  ['tollgate_requests_total', 'counter', ['route', 'method', 'status']],
  ['tollgate_request_duration_seconds', 'histogram', ['route', 'method', 'status']],
  ['tollgate_upstream_duration_seconds', 'histogram', ['upstream', 'target', 'status']],
  ['tollgate_upstream_target_healthy', 'gauge', ['upstream', 'target']],
  ['tollgate_rate_limited_total', 'counter', ['route']],
  ['tollgate_auth_failures_total', 'counter', ['route', 'reason']],
  ['tollgate_store_errors_total', 'counter', ['store']],
  ['tollgate_upstream_retries_total', 'counter', ['upstream', 'target']],
  ['tollgate_circuit_state_changes_total', 'counter', ['upstream', 'target', 'state']]
]

t.test('every metric of the contract is exposed with HELP and TYPE before its first sample', async (t) => {
  const { app } = build(t)
  await app.ready()
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  for (const [name, type] of CONTRACT) {
    t.match(res.body, new RegExp(`^# HELP ${name} \\S`, 'm'), `${name} has HELP`)
    t.match(res.body, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`)
  }
  // Default process metrics of prom-client.
  t.match(res.body, /^# TYPE process_cpu_user_seconds_total counter$/m)
  t.match(res.body, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m)
  // Nothing counted yet: the scrape itself is not a counted request.
  t.equal(sample(res.body, 'tollgate_requests_total', { route: '/metrics', method: 'GET', status: '200' }), undefined)
  t.same(Object.values(METRIC_NAMES).sort(), CONTRACT.map(([name]) => name).sort(), 'METRIC_NAMES lists exactly these')
})

t.test('requests are counted and timed by route pattern, method and status', async (t) => {
  const { app } = build(t)
  app.get('/users/:id', async () => ({ ok: true }))
  app.post('/users', async (_request, reply) => await reply.code(201).send({ created: true }))
  app.get('/boom', async () => { throw new Error('broken') })
  await app.ready()

  for (let i = 0; i < 3; i++) await app.inject({ method: 'GET', url: `/users/${i}` })
  await app.inject({ method: 'POST', url: '/users', payload: { name: 'a' } })
  await app.inject({ method: 'GET', url: '/boom' })
  await app.inject({ method: 'GET', url: '/nope' })

  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(text, 'tollgate_requests_total', { route: '/users/:id', method: 'GET', status: '200' }), 3)
  t.equal(sample(text, 'tollgate_requests_total', { route: '/users', method: 'POST', status: '201' }), 1)
  t.equal(sample(text, 'tollgate_requests_total', { route: '/boom', method: 'GET', status: '500' }), 1)
  t.equal(sample(text, 'tollgate_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 1)
  t.equal(sample(text, 'tollgate_request_duration_seconds_count', { route: '/users/:id', method: 'GET', status: '200' }), 3)
  t.equal(sample(text, 'tollgate_request_duration_seconds_bucket', { route: '/users/:id', method: 'GET', status: '200', le: '+Inf' }), 3)
  const sum = sample(text, 'tollgate_request_duration_seconds_sum', { route: '/users/:id', method: 'GET', status: '200' })
  t.ok(sum !== undefined && sum > 0, 'durations are observed')
  t.equal(labelValues(text, 'tollgate_requests_total', 'route').has('/metrics'), false, 'the metrics endpoint is not counted')

  // Buckets from 0.5 ms to 10 s.
  const les = [...labelValues(text, 'tollgate_request_duration_seconds_bucket', 'le')]
  t.equal(les[0], '0.0005')
  t.ok(les.includes('10'))
  t.equal(les.at(-1), '+Inf')

  // Values move.
  await app.inject({ method: 'GET', url: '/users/9' })
  const after = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(after, 'tollgate_requests_total', { route: '/users/:id', method: 'GET', status: '200' }), 4)
})

t.test('the route label is the manifest prefix from config.tollgate.route when set', async (t) => {
  const { app } = build(t)
  const config = { tollgate: { route: '/api/posts', upstream: 'posts' } }
  app.get('/api/posts', { config }, async () => 'list')
  app.get('/api/posts/*', { config }, async () => 'item')
  await app.ready()
  await app.inject('/api/posts')
  await app.inject('/api/posts/1')
  await app.inject('/api/posts/2/comments')
  const text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'tollgate_requests_total', { route: '/api/posts', method: 'GET', status: '200' }), 3)
  t.same([...labelValues(text, 'tollgate_requests_total', 'route')], ['/api/posts'])
})

t.test('label cardinality stays bounded under 100 distinct paths', async (t) => {
  const { app } = build(t)
  app.get('/api/items/*', { config: { tollgate: { route: '/api/items' } } }, async () => 'ok')
  app.get('/files/:name', async () => 'ok')
  await app.ready()
  for (let i = 0; i < 100; i++) {
    await app.inject(`/api/items/${i}/x?q=${i}`)
    await app.inject(`/files/f${i}.txt`)
    await app.inject(`/random-${i}/path`)
  }
  const text = (await app.inject('/metrics')).body
  const routes = labelValues(text, 'tollgate_requests_total', 'route')
  t.same([...routes].sort(), ['/api/items', '/files/:name', 'unmatched'])
  const series = text.split('\n').filter((line) => line.startsWith('tollgate_requests_total{'))
  t.equal(series.length, 3, 'one series per route, method and status')
  t.equal(sample(text, 'tollgate_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 100)
  t.equal(sample(text, 'tollgate_requests_total', { route: '/api/items', method: 'GET', status: '200' }), 100)
  t.notMatch(text, /random-|f\d+\.txt|\/api\/items\/\d/, 'no raw path in any label')
})

t.test('routes with config.metrics false are not counted', async (t) => {
  const { app } = build(t)
  app.get('/healthz', { config: { metrics: false } }, async () => ({ status: 'ok' }))
  app.get('/counted', async () => 'ok')
  await app.ready()
  await app.inject('/healthz')
  await app.inject('/healthz')
  await app.inject('/counted')
  const text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'tollgate_requests_total', { route: '/counted', method: 'GET', status: '200' }), 1)
  t.equal(labelValues(text, 'tollgate_requests_total', 'route').has('/healthz'), false)
})

t.test('routes registered before the plugin are labelled and honour config.metrics too', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: tollgateMetrics } = await import('../src/index.js')
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  app.get('/early/:id', async () => 'ok')
  app.get('/early-health', { config: { metrics: false } }, async () => 'ok')
  await app.register(tollgateMetrics, { requestLogs: false })
  await app.ready()
  await app.inject('/early/1')
  await app.inject('/early-health')
  const text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'tollgate_requests_total', { route: '/early/:id', method: 'GET', status: '200' }), 1)
  t.equal(labelValues(text, 'tollgate_requests_total', 'route').has('/early-health'), false)
})

t.test('events of the other plugins move their metrics', async (t) => {
  const { app } = build(t)
  await app.ready()
  const events = tollgateRuntime(app).events
  events.emit('authFailure', { route: '/api/posts', reason: 'expired' })
  events.emit('authFailure', { route: '/api/posts', reason: 'expired' })
  events.emit('authFailure', { route: '/api/admin', reason: 'forbidden' })
  events.emit('rateLimited', { route: '/api/auth' })
  events.emit('storeError', { store: 'redis' })
  events.emit('upstreamResponse', { upstream: 'posts', target: 'http://127.0.0.1:3002', status: 200, seconds: 0.003 })
  events.emit('upstreamResponse', { upstream: 'posts', target: 'http://127.0.0.1:3002', status: 200, seconds: 0.2 })
  events.emit('upstreamResponse', { upstream: 'posts', target: 'http://127.0.0.1:3002', status: 200, seconds: Number.NaN })
  events.emit('targetHealth', { upstream: 'posts', target: 'http://127.0.0.1:3002', healthy: true })
  events.emit('targetHealth', { upstream: 'posts', target: 'http://127.0.0.1:3012', healthy: true })
  events.emit('targetHealth', { upstream: 'posts', target: 'http://127.0.0.1:3012', healthy: false })
  events.emit('upstreamRetry', { upstream: 'posts', target: 'http://127.0.0.1:3012' })
  events.emit('circuitState', { upstream: 'posts', target: 'http://127.0.0.1:3012', state: 'open' })
  events.emit('circuitState', { upstream: 'posts', target: 'http://127.0.0.1:3012', state: 'half-open' })

  const text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'tollgate_auth_failures_total', { route: '/api/posts', reason: 'expired' }), 2)
  t.equal(sample(text, 'tollgate_auth_failures_total', { route: '/api/admin', reason: 'forbidden' }), 1)
  t.equal(sample(text, 'tollgate_rate_limited_total', { route: '/api/auth' }), 1)
  t.equal(sample(text, 'tollgate_store_errors_total', { store: 'redis' }), 1)
  const upstream = { upstream: 'posts', target: 'http://127.0.0.1:3002', status: '200' }
  t.equal(sample(text, 'tollgate_upstream_duration_seconds_count', upstream), 2, 'a non-finite duration is ignored')
  t.equal(sample(text, 'tollgate_upstream_duration_seconds_bucket', { ...upstream, le: '0.005' }), 1)
  t.equal(sample(text, 'tollgate_upstream_duration_seconds_sum', upstream), 0.203)
  t.equal(sample(text, 'tollgate_upstream_target_healthy', { upstream: 'posts', target: 'http://127.0.0.1:3002' }), 1)
  t.equal(sample(text, 'tollgate_upstream_target_healthy', { upstream: 'posts', target: 'http://127.0.0.1:3012' }), 0)
  t.equal(sample(text, 'tollgate_upstream_retries_total', { upstream: 'posts', target: 'http://127.0.0.1:3012' }), 1)
  t.equal(sample(text, 'tollgate_circuit_state_changes_total', { upstream: 'posts', target: 'http://127.0.0.1:3012', state: 'open' }), 1)
  t.equal(sample(text, 'tollgate_circuit_state_changes_total', { upstream: 'posts', target: 'http://127.0.0.1:3012', state: 'half-open' }), 1)
})

t.test('two apps in one process have independent registries', async (t) => {
  const one = build(t).app
  const two = build(t).app
  one.get('/x', async () => 'one')
  two.get('/x', async () => 'two')
  await Promise.all([one.ready(), two.ready()])
  t.not(one.tollgateMetrics.registry, two.tollgateMetrics.registry)
  await one.inject('/x')
  await one.inject('/x')
  await two.inject('/x')
  tollgateRuntime(one).events.emit('rateLimited', { route: '/x' })
  const a = (await one.inject('/metrics')).body
  const b = (await two.inject('/metrics')).body
  t.equal(sample(a, 'tollgate_requests_total', { route: '/x', method: 'GET', status: '200' }), 2)
  t.equal(sample(b, 'tollgate_requests_total', { route: '/x', method: 'GET', status: '200' }), 1)
  t.equal(sample(a, 'tollgate_rate_limited_total', { route: '/x' }), 1)
  t.equal(sample(b, 'tollgate_rate_limited_total', { route: '/x' }), undefined)
})

t.test('a registry given in the options is used, and cannot be shared by two apps', async (t) => {
  const registry = new Registry()
  const { app } = build(t, { registry, defaultMetrics: false })
  app.get('/x', async () => 'ok')
  await app.ready()
  await app.inject('/x')
  const text = await registry.metrics()
  t.equal(sample(text, 'tollgate_requests_total', { route: '/x', method: 'GET', status: '200' }), 1)
  t.notMatch(text, /process_cpu_user_seconds_total/, 'defaultMetrics: false leaves out the process metrics')
  t.equal(app.tollgateMetrics.registry, registry)

  const { app: second } = build(t, { registry })
  await t.rejects(async () => { await second.ready() }, { code: 'TOLLGATE_METRICS_REGISTRY_CONFLICT', message: /tollgate_requests_total/ })
})

t.test('the metrics path is configurable, or can be turned off', async (t) => {
  const { app } = build(t, { path: '/internal/prom' })
  await app.ready()
  t.equal((await app.inject('/internal/prom')).statusCode, 200)
  t.equal((await app.inject('/metrics')).statusCode, 404)
  const head = await app.inject({ method: 'HEAD', url: '/internal/prom' })
  t.equal(head.statusCode, 200)

  const { app: off } = build(t, { path: false })
  await off.ready()
  t.equal((await off.inject('/metrics')).statusCode, 404)
  t.match(await off.tollgateMetrics.scrape(), /# TYPE tollgate_requests_total counter/)
})

t.test('the metrics route carries the config the other plugins read', async (t) => {
  const { app } = build(t)
  const seen: Array<{ method: unknown, config: unknown }> = []
  // Added before the plugin's deferred registration runs, so it sees the metrics route.
  app.addHook('onRoute', (route) => { if (route.url === '/metrics') seen.push({ method: route.method, config: route.config }) })
  await app.ready()
  t.match(seen, [
    { method: 'GET', config: { auth: false, rateLimit: false, metrics: false } },
    { method: 'HEAD', config: { auth: false, rateLimit: false, metrics: false } }
  ])
  t.equal(seen.length, 2)
})
