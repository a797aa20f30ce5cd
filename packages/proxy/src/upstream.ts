import { Pool } from 'undici'
import type { CircuitState, TollgateEvents } from '@tollgate/common'
import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedTarget, ResolvedUpstream } from './options.js'

/** One target's live state: its connection pool, health and circuit. */
export class Target {
  readonly url: string
  readonly host: string
  readonly weight: number
  readonly pool: Pool
  /** Requests in flight (least-connections). */
  active = 0
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
  #cursor = 0
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
      let best: Target | null = null
      let bestLoad = Infinity
      const start = this.#cursor++ % targets.length
      for (let k = 0; k < targets.length; k++) {
        const target = targets[(start + k) % targets.length]!
        if (!this.#eligible(target, now) || (tried !== null && tried.includes(target))) continue
        const load = target.active / target.weight
        if (load < bestLoad) {
          best = target
          bestLoad = load
        }
      }
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
    this.#reportHealth(target)
  }

  /** Healthy as `/readyz` and `tollgate_upstream_target_healthy` see it. */
  isHealthy (target: Target): boolean {
    return target.checkedHealthy && target.circuit !== 'open'
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
      if (target.checkedHealthy && (target.circuit !== 'open' || now >= target.openUntil)) return { ok: true }
    }
    return { ok: false, message: 'no healthy target' }
  }

  /** Runs one health check of every target now. */
  async checkHealth (): Promise<void> {
    const check = this.options.healthCheck
    if (check === null) return
    await Promise.all(this.targets.map(async (target) => {
      let ok = false
      const signal = AbortSignal.timeout(check.timeout)
      try {
        const response = await target.pool.request({
          path: check.path,
          method: 'GET',
          headers: { host: target.host, 'user-agent': 'tollgate-health-check' },
          headersTimeout: check.timeout,
          bodyTimeout: check.timeout,
          signal
        })
        await response.body.dump({ signal, limit: 65_536 })
        ok = response.statusCode >= 200 && response.statusCode < 300
      } catch (error) {
        this.#log.debug({ upstream: this.name, target: target.url, err: error }, 'health check failed')
      }
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
    await Promise.all(this.targets.map(async (target) => { await target.pool.destroy() }))
  }
}
