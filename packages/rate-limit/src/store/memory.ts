import { fixedWindow, slidingWindow, stateTtlMs, tokenBucket, type Decision, type Transition } from '../algorithms.js'
import type { Algorithm } from '../options.js'

type AnyTransition = (state: never, now: number, windowMs: number, max: number) => Transition<object>

const TRANSITIONS: Record<Algorithm, AnyTransition> = {
  'fixed-window': fixedWindow as AnyTransition,
  'sliding-window': slidingWindow as AnyTransition,
  'token-bucket': tokenBucket as AnyTransition
}

interface Entry {
  state: object
  /** Epoch ms after which the state is irrelevant (the store's clock). */
  expiresAt: number
}

/**
 * The embedded store for one instance: a bounded map of bucket states, synchronous (no
 * promise, no timer per request). Entries past their TTL are treated as absent and swept
 * periodically; when `maxKeys` is reached the oldest entry is dropped first, so hostile keys
 * cannot grow memory without bound (at worst they reset someone's bucket early).
 */
export class MemoryStore {
  readonly #entries = new Map<string, Entry>()
  readonly #maxKeys: number

  constructor (maxKeys: number) {
    this.#maxKeys = maxKeys
  }

  get size (): number {
    return this.#entries.size
  }

  consume (algorithm: Algorithm, key: string, now: number, windowMs: number, max: number): Decision {
    const entries = this.#entries
    let entry = entries.get(key)
    const state = entry !== undefined && entry.expiresAt > now ? entry.state : undefined
    const transition = TRANSITIONS[algorithm](state as never, now, windowMs, max)
    if (transition.state !== null) {
      if (entry === undefined) {
        if (entries.size >= this.#maxKeys) this.#evictOne(now)
        entry = { state: transition.state, expiresAt: now + stateTtlMs(algorithm, windowMs) }
        entries.set(key, entry)
      } else {
        entry.state = transition.state
        entry.expiresAt = now + stateTtlMs(algorithm, windowMs)
      }
    }
    return transition.decision
  }

  /** Drops every entry whose TTL has passed. Bounded by the map's size (at most `maxKeys`). */
  sweep (now: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(key)
    }
  }

  #evictOne (now: number): void {
    // The oldest inserted entry; prefer it expired, but never look at more than a few.
    let scanned = 0
    let oldest: string | undefined
    for (const [key, entry] of this.#entries) {
      if (oldest === undefined) oldest = key
      if (entry.expiresAt <= now) {
        this.#entries.delete(key)
        return
      }
      if (++scanned >= 8) break
    }
    if (oldest !== undefined) this.#entries.delete(oldest)
  }

  clear (): void {
    this.#entries.clear()
  }
}
