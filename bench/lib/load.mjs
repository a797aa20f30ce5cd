/* global process */
// The autocannon load generator, run as its own (pinned) child process so it
// never shares the gateway's core or event loop. Input: BENCH_LOAD (JSON)
// { url, connections, warmup, duration, method?, headers, body? } (the same
// request, body included, on every connection). Output over IPC:
// { type: 'phase', phase: 'measure' } when the measured part starts, then
// { type: 'result', warmup: {...}, measure: {...} }.
import autocannon from 'autocannon'

const { url, connections, warmup, duration, method = 'GET', headers, body } = JSON.parse(process.env.BENCH_LOAD ?? '{}')

/**
 * Exact latencies of 2xx answers in ms (autocannon's own histogram has 1 ms
 * resolution, too coarse for a proxy on loopback). Grows as needed; a few MB.
 */
class Latencies {
  constructor () {
    this.values = new Float64Array(1 << 16)
    this.length = 0
  }

  add (ms) {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.length++] = ms
  }

  percentile (p) {
    if (this.length === 0) return null
    const sorted = this.values.subarray(0, this.length).sort()
    return sorted[Math.min(this.length - 1, Math.ceil((p / 100) * this.length) - 1)]
  }
}

function run (seconds) {
  const latencies = new Latencies()
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, connections, duration: seconds, pipelining: 1, timeout: 10, method, headers, body }, (error, result) => {
      if (error) reject(error)
      else resolve({ result, latencies })
    })
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.add(responseTime)
    })
  })
}

function summary ({ result, latencies }) {
  const ok = result['2xx']
  return {
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    rps: ok / result.duration,
    p50: latencies.percentile(50),
    p99: latencies.percentile(99),
    statusCodes: result.statusCodeStats ?? {}
  }
}

const result = {}
if (warmup > 0) result.warmup = summary(await run(warmup))
process.send({ type: 'phase', phase: 'measure' })
result.measure = summary(await run(duration))
process.send({ type: 'result', ...result }, () => { process.exit(0) })
