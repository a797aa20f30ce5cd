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
  /** The bucket is spent (remaining 0): dropping it would hand its client a fresh quota. */
  spent: boolean
}

/** How many of the oldest entries an eviction looks at before dropping one whatever it is. */
const EVICTION_SCAN = 16

/**
 * The embedded store for one instance: a bounded map of bucket states, synchronous (no
 * promise, no timer per request). Entries past their TTL are treated as absent and swept
 * periodically; when `maxKeys` is reached an old entry is dropped, so hostile keys cannot
 * grow memory without bound: an expired one first, else the oldest that is not spent. A
 * spent bucket gets a second chance (it moves to the back), so a client cannot flood the
 * store with fresh keys to reset its own exhausted limit (say, on a login route).
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
    const spent = transition.decision.remaining === 0
    if (transition.state !== null) {
      if (entry === undefined) {
        if (entries.size >= this.#maxKeys) this.#evictOne(now)
        entry = { state: transition.state, expiresAt: now + stateTtlMs(algorithm, windowMs), spent }
        entries.set(key, entry)
      } else {
        entry.state = transition.state
        entry.expiresAt = now + stateTtlMs(algorithm, windowMs)
        entry.spent = spent
      }
    } else if (entry !== undefined) {
      entry.spent = spent
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
    // From the oldest: an expired or unspent entry goes; a spent one moves to the back
    // (still counting against its client). Bounded: past EVICTION_SCAN, the oldest goes.
    const entries = this.#entries
    let scanned = 0
    for (const [key, entry] of entries) {
      if (entry.expiresAt <= now || !entry.spent || ++scanned > EVICTION_SCAN) {
        entries.delete(key)
        return
      }
      entries.delete(key)
      entries.set(key, entry)
    }
  }

  clear (): void {
    this.#entries.clear()
  }
}
