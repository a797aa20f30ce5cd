import fp from 'fastify-plugin'
import plugin, { type TollgateMetricsDecorator } from './plugin.js'
import type { TollgateMetricsOptions } from './options.js'

export * as errors from './errors.js'
export { resolveOptions, DEFAULT_BUCKETS, type TollgateMetricsOptions, type ResolvedOptions } from './options.js'
export { METRIC_NAMES, type TollgateMetricSet } from './metrics.js'
export { LabelledCounter, LabelledHistogram, type CounterSeries, type HistogramSeries, type SeriesMetric } from './series.js'
export {
  loggerOptions,
  redactPaths,
  redactUrl,
  scrubSecrets,
  serializers,
  genReqId,
  createGenReqId,
  CENSOR,
  SENSITIVE_HEADERS,
  SENSITIVE_QUERY_PARAMS,
  type TollgateLoggerOptions
} from './logger.js'
export type { TollgateMetricsDecorator } from './plugin.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: not counted in `tollgate_requests_total`, and its log line is at `debug` (the gateway's own endpoints). */
    metrics?: boolean
  }
  interface FastifyInstance {
    /** The registry, metric objects and scrape function of @tollgate/metrics. */
    tollgateMetrics: TollgateMetricsDecorator
  }
}

/** Prometheus metrics, one redacted log line per request and request-id echo for a Fastify gateway. */
const tollgateMetrics = fp<TollgateMetricsOptions>(plugin, { fastify: '5.x', name: '@tollgate/metrics' })

export default tollgateMetrics
export { tollgateMetrics }
