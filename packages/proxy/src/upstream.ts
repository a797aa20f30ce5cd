import { Client, Pool } from 'undici'
import type { CircuitState, TollgateEvents } from '@tollgate/common'
import type { FastifyBaseLogger } from 'fastify'
import type { ProxyCall } from './forward.js'
import type { ResolvedTarget, ResolvedUpstream } from './options.js'

/** One target's live state: its connection pool, health and circuit. */
export class Target {
  readonly url: string
  readonly host: string
  readonly weight: number
  readonly pool: Pool
  /** Requests in flight, waiting for a connection included (least-connections). */
  active = 0
  /** Requests holding one of the pool's `connections` (at most `connections`). */
  running = 0
  /**
   * Requests waiting for a free connection, oldest first. They wait here rather than in
   * undici's pool queue, so that `timeout` bounds the wait and a request that times out
   * (or whose client leaves) is removed at once: undici's queue cannot drop an entry.
   */
  readonly waiting = new Set<ProxyCall>()
  /** The health checks' own connection (never the traffic pool's); `null` until the first check. */
  probe: Client | null = null
  /** Re-reports the health of an open circuit when `resetAfter` expires. */
  reopenTimer: NodeJS.Timeout | null = null
  /** Smooth weighted round-robin state (nginx's algorithm). */
  currentWeight = 0
  /** Verdict of the active health check (true until a check says otherwise). */
  checkedHealthy = true
  checkFailures = 0
  checkSuccesses = 0
  circuit: CircuitState = 'closed'
  failures = 0
  openUntil = 0
  trialInFlight = false
  /** Last value reported in a `targetHealth` event. */
  reportedHealthy = true

  constructor (target: ResolvedTarget, upstream: ResolvedUpstream) {
    this.url = target.url
    this.host = target.host
    this.weight = target.weight
    this.pool = new Pool(target.origin, {
      connections: upstream.connections,
      pipelining: 1,
      headersTimeout: upstream.timeout,
      bodyTimeout: upstream.bodyTimeout,
      keepAliveTimeout: upstream.keepAliveTimeout,
      // undici never follows redirects at the dispatch level; certificates are always verified.
      connect: { timeout: upstream.connectTimeout, rejectUnauthorized: true, ...(upstream.ca === undefined ? {} : { ca: upstream.ca }) }
    })
  }
}

/**
 * An upstream: its targets, the balancing strategy, the circuit breakers and the
 * health checks. Chooses the target of each attempt, so a retry can go elsewhere.
 */
export class Upstream {
  readonly name: string
  readonly options: ResolvedUpstream
  readonly targets: Target[]
  readonly #now: () => number
  readonly #events: TollgateEvents
  readonly #log: FastifyBaseLogger
  #timer: NodeJS.Timeout | null = null
  #closed = false

  constructor (options: ResolvedUpstream, now: () => number, events: TollgateEvents, log: FastifyBaseLogger) {
    this.name = options.name
    this.options = options
    this.targets = options.targets.map((target) => new Target(target, options))
    this.#now = now
    this.#events = events
    this.#log = log
  }

  /** True when the target may take a request now (health check passed and circuit not open). */
  #eligible (target: Target, now: number): boolean {
    if (!target.checkedHealthy) return false
    if (target.circuit === 'closed') return true
    if (target.trialInFlight) return false
    return target.circuit === 'half-open' || now >= target.openUntil
  }

  /**
   * The target for the next attempt, or `null` when none is eligible. Targets in
   * `tried` are avoided while another one is eligible (retries go elsewhere).
   */
  pick (tried: Target[] | null): Target | null {
    const now = this.#now()
    const targets = this.targets
    let chosen: Target | null = null
    if (targets.length === 1) {
      const only = targets[0]!
      chosen = this.#eligible(only, now) ? only : null
    } else {
      chosen = this.#choose(now, tried)
      if (chosen === null && tried !== null) chosen = this.#choose(now, null)
    }
    if (chosen !== null && chosen.circuit !== 'closed') {
      // The one trial request of a half-open circuit.
      chosen.trialInFlight = true
      if (chosen.circuit === 'open') this.#setCircuit(chosen, 'half-open')
    }
    return chosen
  }

  #choose (now: number, tried: Target[] | null): Target | null {
    const targets = this.targets
    const strategy = this.options.balance
    if (strategy === 'round-robin') {
      // Smooth weighted round-robin: even spread, weights honoured, O(targets).
      let total = 0
      let best: Target | null = null
      for (let i = 0; i < targets.length; i++) {
        const target = targets[i]!
        if (!this.#eligible(target, now) || (tried !== null && tried.includes(target))) continue
        target.currentWeight += target.weight
        total += target.weight
        if (best === null || target.currentWeight > best.currentWeight) best = target
      }
      if (best !== null) best.currentWeight -= total
      return best
    }
    if (strategy === 'least-connections') {
      // The lowest in-flight requests per weight (compared as active * other weight, exact);
      // ties, such as every target idle under sequential traffic, are broken by smooth
      // weighted round-robin among the tied targets, as nginx's least_conn does, so weights
      // hold whether or not requests overlap.
      let least: Target | null = null
      for (let i = 0; i < targets.length; i++) {
        const target = targets[i]!
        if (!this.#eligible(target, now) || (tried !== null && tried.includes(target))) continue
        if (least === null || target.active * least.weight < least.active * target.weight) least = target
      }
      if (least === null) return null
      let total = 0
      let best: Target | null = null
      for (let i = 0; i < targets.length; i++) {
        const target = targets[i]!
        if (target.active * least.weight !== least.active * target.weight) continue
        if (!this.#eligible(target, now) || (tried !== null && tried.includes(target))) continue
        target.currentWeight += target.weight
        total += target.weight
        if (best === null || target.currentWeight > best.currentWeight) best = target
      }
      best!.currentWeight -= total
      return best
    }
    // random, weighted
    let total = 0
    for (const target of targets) {
      if (this.#eligible(target, now) && (tried === null || !tried.includes(target))) total += target.weight
    }
    if (total === 0) return null
    let ticket = Math.random() * total
    for (const target of targets) {
      if (!this.#eligible(target, now) || (tried !== null && tried.includes(target))) continue
      ticket -= target.weight
      if (ticket < 0) return target
    }
    return null
  }

  /** Seconds a client should wait before trying again, for `Retry-After`. */
  retryAfter (): number {
    const now = this.#now()
    let soonest = Infinity
    for (const target of this.targets) {
      if (target.checkedHealthy && target.circuit === 'open') soonest = Math.min(soonest, target.openUntil - now)
    }
    if (soonest === Infinity) {
      const interval = this.options.healthCheck?.interval ?? 1000
      const anyDown = this.targets.some((target) => !target.checkedHealthy)
      soonest = anyDown ? interval : 1000
    }
    return Math.max(1, Math.ceil(soonest / 1000))
  }

  /** An attempt on `target` got a usable answer. */
  succeeded (target: Target): void {
    target.failures = 0
    if (target.circuit !== 'closed') {
      target.trialInFlight = false
      this.#setCircuit(target, 'closed')
    }
  }

  /** An attempt on `target` failed (connection, reset, garbage, timeout or a 502/503/504 answer). */
  failed (target: Target): void {
    const breaker = this.options.circuitBreaker
    if (breaker === null) return
    target.failures++
    if (target.circuit === 'half-open' || (target.circuit === 'closed' && target.failures >= breaker.failures)) {
      target.trialInFlight = false
      target.openUntil = this.#now() + breaker.resetAfter
      this.#setCircuit(target, 'open')
    }
  }

  /** A half-open trial ended without a verdict (the client went away): let another request try. */
  released (target: Target): void {
    if (target.circuit === 'half-open') target.trialInFlight = false
  }

  #setCircuit (target: Target, state: CircuitState): void {
    if (target.circuit === state) return
    target.circuit = state
    this.#log.warn({ upstream: this.name, target: target.url, state }, 'circuit %s', state)
    this.#events.emit('circuitState', { upstream: this.name, target: target.url, state })
    if (target.reopenTimer !== null) {
      clearTimeout(target.reopenTimer)
      target.reopenTimer = null
    }
    if (state === 'open') this.#watchReopen(target)
    this.#reportHealth(target)
  }

  /**
   * An open circuit whose `resetAfter` has passed takes a trial request again, so it counts
   * as healthy for `/readyz` (else a load balancer in front would never send that trial).
   * Nothing happens at that moment without traffic, so a timer reports it: the gauge
   * follows `/readyz` instead of staying at 0 until a trial. Times come from `now()`; the
   * timer only wakes the check (a fake clock that has not reached `openUntil` re-arms it).
   */
  #watchReopen (target: Target): void {
    if (this.#closed) return
    const wait = Math.max(1, target.openUntil - this.#now())
    target.reopenTimer = setTimeout(() => {
      target.reopenTimer = null
      if (this.#closed || target.circuit !== 'open') return
      if (this.#now() >= target.openUntil) this.#reportHealth(target)
      else this.#watchReopen(target)
    }, wait)
    target.reopenTimer.unref()
  }

  /**
   * Healthy as `/readyz` and `tollgate_upstream_target_healthy` both see it: the check
   * passed, and the circuit is not open (or its `resetAfter` has passed: a trial may go).
   */
  isHealthy (target: Target, now = this.#now()): boolean {
    return target.checkedHealthy && (target.circuit !== 'open' || now >= target.openUntil)
  }

  #reportHealth (target: Target): void {
    const healthy = this.isHealthy(target)
    if (healthy === target.reportedHealthy) return
    target.reportedHealthy = healthy
    this.#events.emit('targetHealth', { upstream: this.name, target: target.url, healthy })
  }

  /** Emits the initial `targetHealth` of every target (so gauges exist from startup). */
  announce (): void {
    for (const target of this.targets) {
      target.reportedHealthy = this.isHealthy(target)
      this.#events.emit('targetHealth', { upstream: this.name, target: target.url, healthy: target.reportedHealthy })
    }
  }

  readiness (): { ok: boolean, message?: string } {
    const now = this.#now()
    for (const target of this.targets) {
      if (this.isHealthy(target, now)) return { ok: true }
    }
    return { ok: false, message: 'no healthy target' }
  }

  /** Runs one health check of every target now. */
  async checkHealth (): Promise<void> {
    const check = this.options.healthCheck
    if (check === null) return
    await Promise.all(this.targets.map(async (target) => {
      const ok = await this.#probe(target, check.path, check.timeout)
      if (this.#closed) return
      if (ok) {
        target.checkFailures = 0
        target.checkSuccesses++
        if (!target.checkedHealthy && target.checkSuccesses >= check.healthyAfter) {
          target.checkedHealthy = true
          this.#log.info({ upstream: this.name, target: target.url }, 'target healthy')
        }
        if (target.checkedHealthy && target.circuit !== 'closed') {
          // A passing active check un-ejects the target, as Envoy does by default
          // (successful_active_health_check_uneject_host): no need to wait for a trial request.
          target.failures = 0
          target.trialInFlight = false
          this.#setCircuit(target, 'closed')
        }
      } else {
        target.checkSuccesses = 0
        target.checkFailures++
        if (target.checkedHealthy && target.checkFailures >= check.unhealthyAfter) {
          target.checkedHealthy = false
          this.#log.warn({ upstream: this.name, target: target.url }, 'target unhealthy')
        }
      }
      this.#reportHealth(target)
    }))
  }

  /**
   * One health check of `target`, on the target's own probe connection: never the traffic
   * pool, where a check would wait behind busy connections (a hung target, long downloads).
   * The whole check (connect, headers, body) is bounded by `timeout`: past it, or on any
   * failure, the probe connection is destroyed (which fails the request at once, even one
   * still connecting) and the next check opens a new one.
   */
  async #probe (target: Target, path: string, timeout: number): Promise<boolean> {
    const options = this.options
    const probe = target.probe ??= new Client(target.url, {
      pipelining: 1,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: options.keepAliveTimeout,
      connect: { timeout: Math.min(options.connectTimeout, timeout), rejectUnauthorized: true, ...(options.ca === undefined ? {} : { ca: options.ca }) }
    })
    const timer = setTimeout(() => { probe.destroy(new Error(`health check timed out after ${timeout} ms`)).catch(() => {}) }, timeout)
    try {
      const response = await probe.request({
        path,
        method: 'GET',
        headers: { host: target.host, 'user-agent': 'tollgate-health-check' }
      })
      await response.body.dump({ limit: 65_536 })
      return response.statusCode >= 200 && response.statusCode < 300
    } catch (error) {
      this.#log.debug({ upstream: this.name, target: target.url, err: error }, 'health check failed')
      if (target.probe === probe) target.probe = null
      probe.destroy().catch(() => {})
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  /** Starts the periodic health checks (first round now). */
  startHealthChecks (): void {
    const check = this.options.healthCheck
    if (check === null || this.#closed) return
    const round = (): void => {
      this.checkHealth().then(() => {
        if (this.#closed) return
        this.#timer = setTimeout(round, check.interval)
        this.#timer.unref()
      }, /* c8 ignore next */ (err: unknown) => { this.#log.error({ err }, 'health check round failed') })
    }
    round()
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    await Promise.all(this.targets.map(async (target) => {
      if (target.reopenTimer !== null) clearTimeout(target.reopenTimer)
      const probe = target.probe
      target.probe = null
      await Promise.all([target.pool.destroy(), probe?.destroy()])
    }))
  }
}
