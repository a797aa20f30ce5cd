// The Grafana dashboard (examples/grafana/) must not drift from the metrics: every metric
// and label its PromQL uses has to exist in a real scrape of a running gateway.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { createGateway, parseManifestText } from '@tollgate/gateway'
import t from 'tap'
import { freePorts } from './helpers/starter.js'

const dashboardFile = fileURLToPath(new URL('../../../grafana/tollgate-dashboard.json', import.meta.url))

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a dashboard is read loosely
type Loose = any

/** Added by Prometheus when it scrapes (`job`, `instance`) or by histograms (`le`): never in the exposition's labels. */
const SCRAPE_LABELS = new Set(['job', 'instance', 'le'])
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan'])

export interface Expression { where: string, expr: string }

/** Every PromQL expression of the dashboard: panel targets (rows' panels included) and template variable queries. */
export function expressions (dashboard: Loose): Expression[] {
  const found: Expression[] = []
  const panels = (list: Loose[] = []): void => {
    for (const panel of list) {
      for (const target of panel.targets ?? []) found.push({ where: `panel "${panel.title as string}" ${target.refId as string}`, expr: target.expr })
      panels(panel.panels)
    }
  }
  panels(dashboard.panels)
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue
    // label_values(metric{matchers}, label) → a selector, plus the label it reads
    const match = /^label_values\((.*),\s*([A-Za-z_]\w*)\)$/.exec(variable.query?.query ?? variable.definition)
    if (match === null) throw new Error(`variable ${variable.name as string}: unexpected query ${JSON.stringify(variable.query)}`)
    found.push({ where: `variable $${variable.name as string}`, expr: `sum by (${match[2] as string}) (${match[1] as string})` })
  }
  return found
}

/** Metric names and label names that a PromQL expression refers to. */
export function references (expr: string): { metrics: string[], labels: string[] } {
  const labels: string[] = []
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals: regexes, $variables
  rest = rest.replace(/\{([^}]*)\}/g, (_all, matchers: string) => {
    for (const m of matchers.matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1] as string)
    return ' '
  })
  rest = rest.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_all, list: string) => {
    labels.push(...list.split(',').map((label) => label.trim()).filter((label) => label !== ''))
    return ' '
  })
  rest = rest.replace(/\[[^\]]*\]/g, ' ') // range selectors
  const metrics: string[] = []
  for (const m of rest.matchAll(/([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = m
    if (call !== undefined || KEYWORDS.has(name!.toLowerCase())) continue // a function or a keyword
    if (/^\d/.test(name!)) continue
    metrics.push(name!)
  }
  return { metrics, labels }
}

interface Exposition { names: Set<string>, labels: Map<string, Set<string>> }

/** Names a query may use (sample names, and the family names of HELP/TYPE with histogram suffixes) and each one's labels. */
export function parseExposition (text: string): Exposition {
  const names = new Set<string>()
  const labels = new Map<string, Set<string>>()
  const labelsOf = (name: string): Set<string> => {
    let set = labels.get(name)
    if (set === undefined) labels.set(name, set = new Set())
    return set
  }
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) {
      const [, family, kind] = type as unknown as [string, string, string]
      const sampleNames = kind === 'histogram' ? ['_bucket', '_sum', '_count'].map((suffix) => family + suffix) : kind === 'summary' ? [family, `${family}_sum`, `${family}_count`] : [family]
      for (const name of sampleNames) {
        names.add(name)
        labelsOf(name)
      }
      continue
    }
    if (line.startsWith('#') || line.trim() === '') continue
    const sample = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s/.exec(line)
    if (sample === null) continue
    names.add(sample[1]!)
    for (const m of (sample[2] ?? '').matchAll(/([A-Za-z_]\w*)="/g)) labelsOf(sample[1]!).add(m[1]!)
  }
  return { names, labels }
}

t.test('the PromQL reader finds metrics and labels, and skips functions, keywords and literals', async (t) => {
  t.same(references('histogram_quantile(0.95, sum by (le, route) (rate(tollgate_request_duration_seconds_bucket{job=~"$job", route=~"a|b"}[$__rate_interval])))'),
    { metrics: ['tollgate_request_duration_seconds_bucket'], labels: ['job', 'route', 'le', 'route'] })
  t.same(references('count(up{x="1"} == 0) or vector(0)').metrics, ['up'])
  t.same(references('sum(rate(a_total[5m])) / sum without (b) (rate(c_total[1m]))'), { metrics: ['a_total', 'c_total'], labels: ['b'] })
})

t.test('every metric and label in the dashboard exists in a real scrape of a running gateway', async (t) => {
  // Two small gateways with a little traffic, so that every labelled metric has samples.
  // The first: a route behind an API key with a tiny in-memory rate limit, and an upstream
  // whose first target refuses connections (a retry, and its circuit opening). The second
  // keeps its rate limits in a "Redis" that is not there (store errors, failing open).
  const upstream = createServer((_request, response) => { response.setHeader('content-type', 'application/json'); response.end('{"ok":true}') })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close() })
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`
  const [closed] = await freePorts(1)
  const key = 'grafana-probe-key'
  const common = `
version: 1
server: { host: 127.0.0.1, port: 0, metrics: /metrics, health: /healthz }
auth:
  apiKeys:
    header: x-api-key
    keys: [{ id: probe, sha256: ${createHash('sha256').update(key).digest('hex')}, roles: [user] }]
upstreams:
  echo: { targets: ["${upstreamUrl}"], healthCheck: { path: /, interval: 1s, timeout: 1s } }
  flaky: { targets: ["http://127.0.0.1:${closed!}", "${upstreamUrl}"], balance: round-robin, retries: 1, circuitBreaker: { failures: 1, resetAfter: 1m } }
routes:
  - { prefix: /api/echo, upstream: echo, auth: { methods: [apiKey], roles: [user] }, rateLimit: { max: 1, window: 1m, by: ip } }
  - { prefix: /api/flaky, upstream: flaky, auth: false }
`
  const start = async (extra: string): Promise<string> => {
    const app = await createGateway(parseManifestText(common + extra, 'grafana-probe.yaml', { env: {} }), { logStream: { write () {} }, logLevel: 'fatal' })
    t.teardown(() => app.close())
    return await app.listen({ port: 0, host: '127.0.0.1' })
  }
  const get = async (url: string, headers: Record<string, string> = {}): Promise<number> => {
    const response = await fetch(url, { headers })
    await response.body?.cancel()
    return response.status
  }

  const memory = await start('rateLimit: { algorithm: fixed-window, default: { max: 100, window: 1m, by: ip } }\n')
  const statuses = [
    await get(`${memory}/api/echo/x`, { 'x-api-key': key }),
    await get(`${memory}/api/echo/x`, { 'x-api-key': key }),
    await get(`${memory}/api/echo/x`, { 'x-api-key': 'wrong' }),
    await get(`${memory}/api/echo/x`),
    await get(`${memory}/api/flaky/a`),
    await get(`${memory}/api/flaky/b`),
    await get(`${memory}/nowhere`)
  ]
  t.same(statuses, [200, 429, 401, 401, 200, 200, 404], 'traffic: allowed, rate-limited, unknown key, missing key, retried or rerouted twice, unmatched')
  const redisDown = await start(`redis: { url: "redis://127.0.0.1:${closed!}", keyPrefix: "grafana-probe:", commandTimeout: 200ms }
rateLimit: { algorithm: fixed-window, default: { max: 100, window: 1m, by: ip }, onStoreError: allow }
`)
  t.equal(await get(`${redisDown}/api/flaky/c`), 200, 'the store is down, the request passes (onStoreError: allow)')

  const scrapes = await Promise.all([memory, redisDown].map(async (base) => {
    const response = await fetch(`${base}/metrics`)
    t.equal(response.status, 200)
    return await response.text()
  }))
  const exposition = parseExposition(scrapes.join('\n'))
  for (const [metric, label] of [['tollgate_requests_total', 'route'], ['tollgate_rate_limited_total', 'route'], ['tollgate_auth_failures_total', 'reason'],
    ['tollgate_upstream_retries_total', 'target'], ['tollgate_circuit_state_changes_total', 'state'], ['tollgate_store_errors_total', 'store']] as const) {
    t.ok(exposition.labels.get(metric)?.has(label), `the scrapes have samples of ${metric}`)
  }

  t.notOk(exposition.names.has('tollgate_request_total'), 'a misspelt name would be caught')
  t.notOk(exposition.names.has('tollgate_request_duration_seconds'), 'so would a histogram queried without _bucket/_sum/_count')

  const dashboard: Loose = JSON.parse(await readFile(dashboardFile, 'utf8'))
  t.equal(dashboard.schemaVersion, 39)
  t.ok(dashboard.templating.list.some((variable: Loose) => variable.type === 'datasource' && variable.query === 'prometheus'), 'a Prometheus data source variable')
  const all = expressions(dashboard)
  t.ok(all.length >= 15, `${all.length} expressions`)
  const used = new Set<string>()
  for (const { where, expr } of all) {
    const found = references(expr)
    const metrics = [...new Set(found.metrics)]
    const labels = [...new Set(found.labels)]
    t.ok(metrics.length > 0, `${where} queries a metric`)
    for (const metric of metrics) {
      used.add(metric)
      t.ok(exposition.names.has(metric), `${where}: ${metric} is exposed`)
    }
    for (const label of labels) {
      if (SCRAPE_LABELS.has(label)) continue
      t.ok(metrics.some((metric) => exposition.labels.get(metric)?.has(label)), `${where}: label ${label} is on ${metrics.join(', ')}`)
    }
  }
  // The dashboard covers every metric of the contract (and of @tollgate/metrics' README).
  for (const family of ['tollgate_requests_total', 'tollgate_request_duration_seconds_bucket', 'tollgate_upstream_duration_seconds_bucket',
    'tollgate_upstream_target_healthy', 'tollgate_rate_limited_total', 'tollgate_auth_failures_total', 'tollgate_store_errors_total',
    'tollgate_upstream_retries_total', 'tollgate_circuit_state_changes_total']) {
    t.ok(used.has(family), `the dashboard uses ${family}`)
  }
})
