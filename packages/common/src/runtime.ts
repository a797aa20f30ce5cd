import type { FastifyInstance, FastifyRequest } from 'fastify'

/** Why an authentication attempt failed, as counted in `tollgate_auth_failures_total`. */
export type AuthFailureReason = 'missing' | 'invalid' | 'expired' | 'forbidden' | 'unavailable'

/** State of a circuit breaker on one upstream target. */
export type CircuitState = 'closed' | 'open' | 'half-open'

/**
 * What the feature plugins report. @tollgate/metrics listens; the others only emit,
 * so none of them depends on prom-client (or on each other).
 */
export interface TollgateEventMap {
  authFailure: { route: string, reason: AuthFailureReason }
  rateLimited: { route: string }
  storeError: { store: string }
  upstreamResponse: { upstream: string, target: string, status: number, seconds: number }
  targetHealth: { upstream: string, target: string, healthy: boolean }
  upstreamRetry: { upstream: string, target: string }
  circuitState: { upstream: string, target: string, state: CircuitState }
}

export type TollgateEventName = keyof TollgateEventMap
type Listener<E extends TollgateEventName> = (event: TollgateEventMap[E]) => void

/** A tiny synchronous, typed event bus: no listener, no cost beyond one array check. */
export class TollgateEvents {
  readonly #listeners: { [E in TollgateEventName]?: Array<Listener<E>> } = {}

  on<E extends TollgateEventName> (name: E, listener: Listener<E>): void {
    const list = (this.#listeners[name] ??= []) as Array<Listener<E>>
    list.push(listener)
  }

  hasListeners (name: TollgateEventName): boolean {
    return (this.#listeners[name]?.length ?? 0) > 0
  }

  emit<E extends TollgateEventName> (name: E, event: TollgateEventMap[E]): void {
    const list = this.#listeners[name] as Array<Listener<E>> | undefined
    if (list === undefined) return
    for (const listener of list) listener(event)
  }
}

/** One readiness check's verdict. */
export interface ReadinessResult {
  ok: boolean
  message?: string
}

export type ReadinessCheck = () => ReadinessResult | Promise<ReadinessResult>

/** The shared runtime every Tollgate plugin of one Fastify app talks through. */
export interface TollgateRuntime {
  readonly events: TollgateEvents
  /** Adds a readiness check; `name` is reported in `/readyz` (`redis`, `upstream:posts`, ...). */
  addReadinessCheck: (name: string, check: ReadinessCheck) => void
  /** Runs every readiness check; a check that throws or takes over `timeoutMs` fails. */
  checkReadiness: (timeoutMs?: number) => Promise<Array<{ name: string } & ReadinessResult>>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Shared by every Tollgate plugin of this app; made by the first one registered. */
    tollgate: TollgateRuntime
  }
  interface FastifyContextConfig {
    /** Set by @tollgate/proxy (or by you) so every plugin labels this route the same way. */
    tollgate?: {
      /** The route's stable label: its manifest prefix. Used for metrics and rate-limit buckets. */
      route: string
      /** The upstream's name, when the route proxies to one. */
      upstream?: string
    }
  }
}

function createRuntime (): TollgateRuntime {
  const checks = new Map<string, ReadinessCheck>()
  return {
    events: new TollgateEvents(),
    addReadinessCheck (name, check) {
      checks.set(name, check)
    },
    async checkReadiness (timeoutMs = 2000) {
      return await Promise.all([...checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined
        try {
          const timeout = new Promise<ReadinessResult>((resolve) => {
            timer = setTimeout(() => { resolve({ ok: false, message: `check timed out after ${timeoutMs} ms` }) }, timeoutMs)
          })
          const result = await Promise.race([Promise.resolve().then(check), timeout])
          return { name, ...result }
        } catch (error) {
          return { name, ok: false, message: error instanceof Error ? error.message : String(error) }
        } finally {
          clearTimeout(timer)
        }
      }))
    }
  }
}

/**
 * The app's shared Tollgate runtime, decorated on first use. Call it at registration
 * time from a plugin wrapped with fastify-plugin, so the decorator lands on the root.
 */
export function tollgateRuntime (fastify: FastifyInstance): TollgateRuntime {
  if (!fastify.hasDecorator('tollgate')) fastify.decorate('tollgate', createRuntime())
  return fastify.tollgate
}

/**
 * The label of the route a request matched: the manifest prefix when set, else the
 * Fastify route pattern, else `unmatched`. Never the raw path (cardinality stays bounded).
 */
export function routeLabel (request: FastifyRequest): string {
  const options = request.routeOptions
  return options.config?.tollgate?.route ?? options.url ?? 'unmatched'
}
