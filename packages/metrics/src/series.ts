import type { Metric, Registry } from 'prom-client'

/*
 * The three metrics updated on every request (requests, request and upstream durations)
 * are kept here rather than in prom-client's Counter and Histogram: prom-client's
 * observe() builds a label object, hashes it and bumps a bucket in an object keyed by the
 * bound's string form, on every call (about 1.5 us a request in the profile of issue 5).
 * A series here is a Float64Array found once per label set; the exposition is still
 * prom-client's (these objects are registered in its Registry and answer get() in the
 * shape its own metrics do), so the text served at /metrics is unchanged.
 */

type LabelValues = Record<string, string>

/** What `labels()` returns for a counter: add to the series. */
export interface CounterSeries { inc: (amount?: number) => void }
/** What `labels()` returns for a histogram: record one value, in seconds. */
export interface HistogramSeries { observe: (value: number) => void }

/** A metric of series by label values (an interface, so declaration merging sees one type). */
export interface SeriesMetric<N extends string, S> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly N[]
  /** The series of these label values (in `labelNames` order), made on first use; keep it. */
  labels: (...values: string[]) => S
  /** Forgets every series. */
  reset: () => void
}

interface MetricValue {
  value: number
  labels: Record<string, string | number>
  sharedLabels?: LabelValues
  metricName?: string
  exemplar?: null
}

interface MetricData {
  name: string
  help: string
  type: 'counter' | 'histogram'
  values: MetricValue[]
  aggregator: 'sum'
}

abstract class LabelledMetric<N extends string, S> implements SeriesMetric<N, S> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly N[]
  readonly aggregator = 'sum'
  /** Series by their label values joined with NUL (a value cannot contain one in a label set we make). */
  protected series = new Map<string, { labels: LabelValues, series: S }>()

  constructor (options: { name: string, help: string, labelNames: readonly N[], registers: Registry[] }) {
    this.name = options.name
    this.help = options.help
    this.labelNames = options.labelNames
    // Registered as prom-client's own metrics are; its Metric type lists only its classes.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric)
  }

  protected abstract create (): S

  /** The series of these label values (in `labelNames` order), made on first use; keep it. */
  labels (...values: string[]): S {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected ${this.labelNames.length} label values (${this.labelNames.join(', ')}), got ${values.length}`)
    const key = values.join('\u0000')
    let entry = this.series.get(key)
    if (entry === undefined) {
      const labels: LabelValues = {}
      this.labelNames.forEach((name, i) => { labels[name] = String(values[i]) })
      entry = { labels, series: this.create() }
      this.series.set(key, entry)
    }
    return entry.series
  }

  /** Forgets every series (prom-client's Registry.resetMetrics() calls this). */
  reset (): void {
    this.series = new Map()
  }
}

class CounterValue implements CounterSeries {
  value = 0
  inc (amount = 1): void {
    if (!(amount >= 0) || !Number.isFinite(amount)) throw new TypeError(`a counter only goes up by a finite amount, not ${amount}`)
    this.value += amount
  }
}

/** A counter with labels, updated without allocation once its series exists. */
export class LabelledCounter<N extends string> extends LabelledMetric<N, CounterSeries> {
  readonly type = 'counter'

  protected create (): CounterSeries {
    return new CounterValue()
  }

  async get (): Promise<MetricData> {
    const values: MetricValue[] = []
    for (const { labels, series } of this.series.values()) values.push({ value: (series as CounterValue).value, labels })
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' }
  }
}

class HistogramValue implements HistogramSeries {
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor (private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    if (!Number.isFinite(value)) return
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

/** A histogram with labels, updated without allocation once its series exists. */
export class LabelledHistogram<N extends string> extends LabelledMetric<N, HistogramSeries> {
  readonly type = 'histogram'
  readonly upperBounds: readonly number[]
  readonly #bounds: Float64Array

  constructor (options: { name: string, help: string, labelNames: readonly N[], buckets: readonly number[], registers: Registry[] }) {
    super(options)
    const sorted = [...new Set(options.buckets)].sort((a, b) => a - b)
    this.upperBounds = Object.freeze(sorted)
    this.#bounds = Float64Array.from(sorted)
  }

  protected create (): HistogramSeries {
    return new HistogramValue(this.#bounds)
  }

  /** For the text exposition, in the shape of prom-client's Histogram: `le` first, the series' labels shared. */
  async getForPromString (): Promise<MetricData> {
    const values: MetricValue[] = []
    const bucket = `${this.name}_bucket`
    for (const { labels, series } of this.series.values()) {
      const { counts, sum, count } = series as HistogramValue
      let cumulative = 0
      this.upperBounds.forEach((le, i) => {
        cumulative += counts[i]!
        values.push({ value: cumulative, labels: { le }, sharedLabels: labels, metricName: bucket, exemplar: null })
      })
      values.push(
        { value: count, labels: { le: '+Inf' }, sharedLabels: labels, metricName: bucket, exemplar: null },
        { value: sum, labels: {}, sharedLabels: labels, metricName: `${this.name}_sum` },
        { value: count, labels: {}, sharedLabels: labels, metricName: `${this.name}_count` }
      )
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' }
  }

  /** As prom-client's Histogram.get(): each value's labels with the series' merged in. */
  async get (): Promise<MetricData> {
    const data = await this.getForPromString()
    data.values = data.values.map(({ sharedLabels, labels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } }))
    return data
  }
}
