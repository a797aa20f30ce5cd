import { Counter, Gauge, collectDefaultMetrics, type Registry } from 'prom-client'
import type { TollgateEvents } from '@tollgate/common'
import { RegistryConflictError } from './errors.js'
import { LabelledCounter, LabelledHistogram, type CounterSeries, type HistogramSeries, type SeriesMetric } from './series.js'

/** The metric names this plugin registers (CONTRACT.md's table plus retries and circuit changes). */
export const METRIC_NAMES = Object.freeze({
  requests: 'tollgate_requests_total',
  requestDuration: 'tollgate_request_duration_seconds',
  upstreamDuration: 'tollgate_upstream_duration_seconds',
  upstreamHealthy: 'tollgate_upstream_target_healthy',
  rateLimited: 'tollgate_rate_limited_total',
  authFailures: 'tollgate_auth_failures_total',
  storeErrors: 'tollgate_store_errors_total',
  upstreamRetries: 'tollgate_upstream_retries_total',
  circuitStateChanges: 'tollgate_circuit_state_changes_total'
} as const)

/**
 * The metric objects, for custom reads or extra series. The three updated on every request
 * are Tollgate's allocation-free series (`labels(...values)` then `inc()` / `observe()`,
 * see series.ts); the others are prom-client's own. All are in the plugin's Registry.
 */
export interface TollgateMetricSet {
  requests: SeriesMetric<'route' | 'method' | 'status', CounterSeries>
  requestDuration: SeriesMetric<'route' | 'method' | 'status', HistogramSeries>
  upstreamDuration: SeriesMetric<'upstream' | 'target' | 'status', HistogramSeries>
  upstreamHealthy: Gauge<'upstream' | 'target'>
  rateLimited: Counter<'route'>
  authFailures: Counter<'route' | 'reason'>
  storeErrors: Counter<'store'>
  upstreamRetries: Counter<'upstream' | 'target'>
  circuitStateChanges: Counter<'upstream' | 'target' | 'state'>
}

export function createMetricSet (registry: Registry, buckets: readonly number[], defaultMetrics: boolean): TollgateMetricSet {
  for (const name of Object.values(METRIC_NAMES)) {
    if (registry.getSingleMetric(name) !== undefined) throw new RegistryConflictError(name)
  }
  const registers = [registry]
  const set: TollgateMetricSet = {
    requests: new LabelledCounter({
      name: METRIC_NAMES.requests,
      help: 'Requests answered by the gateway, by route (manifest prefix or route pattern), method and status.',
      labelNames: ['route', 'method', 'status'] as const,
      registers
    }),
    requestDuration: new LabelledHistogram({
      name: METRIC_NAMES.requestDuration,
      help: 'Time from receiving a request to the end of its response, in seconds.',
      labelNames: ['route', 'method', 'status'] as const,
      buckets,
      registers
    }),
    upstreamDuration: new LabelledHistogram({
      name: METRIC_NAMES.upstreamDuration,
      help: 'Time an upstream target took to answer one attempt (until its response headers), in seconds.',
      labelNames: ['upstream', 'target', 'status'] as const,
      buckets,
      registers
    }),
    upstreamHealthy: new Gauge({
      name: METRIC_NAMES.upstreamHealthy,
      help: 'Whether an upstream target is healthy (1) or ejected (0).',
      labelNames: ['upstream', 'target'] as const,
      registers
    }),
    rateLimited: new Counter({
      name: METRIC_NAMES.rateLimited,
      help: 'Requests refused with 429 by the rate limiter, by route.',
      labelNames: ['route'] as const,
      registers
    }),
    authFailures: new Counter({
      name: METRIC_NAMES.authFailures,
      help: 'Failed authentications or authorizations, by route and reason (missing, invalid, expired, forbidden, unavailable).',
      labelNames: ['route', 'reason'] as const,
      registers
    }),
    storeErrors: new Counter({
      name: METRIC_NAMES.storeErrors,
      help: 'Errors of a state store (for example the rate-limit Redis store), by store.',
      labelNames: ['store'] as const,
      registers
    }),
    upstreamRetries: new Counter({
      name: METRIC_NAMES.upstreamRetries,
      help: 'Retries of a proxied request, by upstream and the target retried on.',
      labelNames: ['upstream', 'target'] as const,
      registers
    }),
    circuitStateChanges: new Counter({
      name: METRIC_NAMES.circuitStateChanges,
      help: 'Circuit breaker transitions of an upstream target, by the state entered (closed, open, half-open).',
      labelNames: ['upstream', 'target', 'state'] as const,
      registers
    })
  }
  if (defaultMetrics) collectDefaultMetrics({ register: registry })
  return set
}

type Inc = () => void

/**
 * Label children memoised by key, so the hot path does no label-object building.
 * Keys come from bounded sets (routes, upstreams, targets, statuses).
 */
function memo<T> (make: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>()
  return (key) => {
    let value = cache.get(key)
    if (value === undefined) {
      value = make(key)
      cache.set(key, value)
    }
    return value
  }
}

/** Subscribes the metric set to the events the other Tollgate plugins emit. */
export function listen (events: TollgateEvents, set: TollgateMetricSet): void {
  const SEP = '\u0000'
  const authFailure = memo<Inc>((key) => {
    const [route = '', reason = ''] = key.split(SEP)
    const child = set.authFailures.labels(route, reason)
    return () => { child.inc() }
  })
  const rateLimited = memo<Inc>((route) => {
    const child = set.rateLimited.labels(route)
    return () => { child.inc() }
  })
  const storeError = memo<Inc>((store) => {
    const child = set.storeErrors.labels(store)
    return () => { child.inc() }
  })
  // Called on every proxied request: nested maps, so finding the series builds no string.
  const upstreamSeries = new Map<string, Map<string, Map<number, HistogramSeries>>>()
  const upstreamResponse = (upstream: string, target: string, status: number): HistogramSeries => {
    let byTarget = upstreamSeries.get(upstream)
    if (byTarget === undefined) upstreamSeries.set(upstream, byTarget = new Map())
    let byStatus = byTarget.get(target)
    if (byStatus === undefined) byTarget.set(target, byStatus = new Map())
    let series = byStatus.get(status)
    if (series === undefined) byStatus.set(status, series = set.upstreamDuration.labels(upstream, target, String(status)))
    return series
  }
  const upstreamRetry = memo<Inc>((key) => {
    const [upstream = '', target = ''] = key.split(SEP)
    const child = set.upstreamRetries.labels(upstream, target)
    return () => { child.inc() }
  })
  const circuitState = memo<Inc>((key) => {
    const [upstream = '', target = '', state = ''] = key.split(SEP)
    const child = set.circuitStateChanges.labels(upstream, target, state)
    return () => { child.inc() }
  })

  events.on('authFailure', (event) => { authFailure(String(event.route) + SEP + String(event.reason))() })
  events.on('rateLimited', (event) => { rateLimited(String(event.route))() })
  events.on('storeError', (event) => { storeError(String(event.store))() })
  events.on('upstreamResponse', (event) => {
    if (!Number.isFinite(event.seconds) || event.seconds < 0) return
    upstreamResponse(String(event.upstream), String(event.target), Number(event.status)).observe(event.seconds)
  })
  events.on('upstreamRetry', (event) => { upstreamRetry(String(event.upstream) + SEP + String(event.target))() })
  events.on('circuitState', (event) => {
    circuitState(String(event.upstream) + SEP + String(event.target) + SEP + String(event.state))()
  })
  events.on('targetHealth', (event) => {
    set.upstreamHealthy.labels(String(event.upstream), String(event.target)).set(event.healthy ? 1 : 0)
  })
}
