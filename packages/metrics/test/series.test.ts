import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { DEFAULT_BUCKETS } from '../src/index.js'
import { LabelledCounter, LabelledHistogram } from '../src/series.js'

// The exposition of Tollgate's series must be byte for byte what prom-client's own
// Counter and Histogram print for the same observations.
t.test('a LabelledHistogram exposes exactly what a prom-client Histogram does', async (t) => {
  const ours = new Registry()
  const theirs = new Registry()
  const options = { name: 'x_duration_seconds', help: 'Durations "quoted" \\ and\nnewline.', labelNames: ['route', 'status'] as const }
  const fast = new LabelledHistogram({ ...options, buckets: DEFAULT_BUCKETS, registers: [ours] })
  const slow = new Histogram({ ...options, buckets: [...DEFAULT_BUCKETS], registers: [theirs] })
  t.equal(await ours.metrics(), await theirs.metrics(), 'HELP and TYPE before any sample')
  const values = [0, 0.0004, 0.0005, 0.00051, 0.003, 0.25, 9.99, 10, 11, 1e6]
  for (const [route, status] of [['/api/a', '200'], ['/api/"b"', '503'], ['/api/a', '404']] as const) {
    for (const value of values) {
      fast.labels(route, status).observe(value)
      slow.labels(route, status).observe(value)
    }
  }
  t.equal(await ours.metrics(), await theirs.metrics())
  t.equal(JSON.stringify(await ours.getMetricsAsJSON()), JSON.stringify(await theirs.getMetricsAsJSON()), 'and the JSON form')
  ours.resetMetrics()
  theirs.resetMetrics()
  t.equal(await ours.metrics(), await theirs.metrics(), 'reset forgets every series')
})

t.test('a LabelledCounter exposes exactly what a prom-client Counter does, and refuses what it refuses', async (t) => {
  const ours = new Registry()
  const theirs = new Registry()
  const options = { name: 'x_total', help: 'Things.', labelNames: ['route', 'method'] as const }
  const fast = new LabelledCounter({ ...options, registers: [ours] })
  const slow = new Counter({ ...options, registers: [theirs] })
  for (let i = 0; i < 5; i++) {
    fast.labels('/a', 'GET').inc()
    slow.labels('/a', 'GET').inc()
  }
  fast.labels('/b', 'POST').inc(2.5)
  slow.labels('/b', 'POST').inc(2.5)
  t.equal(await ours.metrics(), await theirs.metrics())
  t.throws(() => { fast.labels('/a', 'GET').inc(-1) }, TypeError)
  t.throws(() => { fast.labels('/a') }, /x_total: expected 2 label values \(route, method\), got 1/)
  t.equal(fast.labels('/a', 'GET'), fast.labels('/a', 'GET'), 'one series object per label set')
  t.throws(() => new LabelledCounter({ ...options, registers: [ours] }), /already been registered/, 'a name is registered once')
})
