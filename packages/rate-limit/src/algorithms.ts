/**
 * The three algorithms as pure state transitions, in integer milliseconds.
 *
 * The in-memory store runs these functions; the Redis store runs the Lua scripts of
 * `store/scripts.ts`, which are line-for-line the same arithmetic (all values are integers
 * below 2^53, so JS and Lua doubles give identical results). `test/parity.test.ts` drives
 * both with one script of requests and compares every decision.
 */

/** What the store answers for one request. */
export interface Decision {
  /** The request is admitted (and was counted). */
  allowed: boolean
  /** Requests still admitted right now, after this one (0 when refused). */
  remaining: number
  /** Milliseconds until the full quota (`remaining === max`) is back if no request is made. */
  resetMs: number
  /** When refused: milliseconds until the next request would be admitted; 0 when admitted. */
  retryAfterMs: number
}

/** fixed-window state: the window opened at `start` (the first request counted in it). */
export interface FixedWindowState { start: number, count: number }
/** sliding-window state: counts of sub-window `index` (`floor(now / window)`) and of the one before it. */
export interface SlidingWindowState { index: number, current: number, previous: number }
/** token-bucket state: `level` in tokens × window (integer), as of `at`. */
export interface TokenBucketState { level: number, at: number }

export interface Transition<S> {
  decision: Decision
  /** The state to store (`null`: leave the stored state as it is). */
  state: S | null
}

/**
 * How long a stored state can matter, from its last write: the TTL of its key. Each
 * transition reads the timestamps it stored, so a state older than this is equivalent to
 * none; expiry is only garbage collection, and an upper bound keeps it independent of the clock.
 */
export function stateTtlMs (algorithm: 'fixed-window' | 'sliding-window' | 'token-bucket', windowMs: number): number {
  return algorithm === 'sliding-window' ? 2 * windowMs : windowMs
}

/**
 * fixed-window: a window opens at the first request of a key and lasts `windowMs`; up to `max`
 * requests are admitted in it. Refused requests are not counted.
 */
export function fixedWindow (state: FixedWindowState | undefined, now: number, windowMs: number, max: number): Transition<FixedWindowState> {
  let start: number
  let count: number
  if (state === undefined || now >= state.start + windowMs) {
    start = now
    count = 0
  } else {
    start = state.start
    count = state.count
  }
  // A clock behind the one that opened the window (skew between instances) never lengthens it.
  const resetMs = Math.min(start + windowMs - now, windowMs)
  if (count < max) {
    count++
    return { decision: { allowed: true, remaining: max - count, resetMs, retryAfterMs: 0 }, state: { start, count } }
  }
  return { decision: { allowed: false, remaining: 0, resetMs, retryAfterMs: resetMs }, state: null }
}

/**
 * sliding-window (the sliding window counter): time is cut into sub-windows of `windowMs`
 * aligned on the epoch; the estimate at `e` ms into the current one is
 * `previous × (windowMs − e) / windowMs + current`. A request is admitted when the estimate
 * including it is at most `max`.
 */
export function slidingWindow (state: SlidingWindowState | undefined, now: number, windowMs: number, max: number): Transition<SlidingWindowState> {
  let index = Math.floor(now / windowMs)
  let elapsed = now - index * windowMs
  let current = 0
  let previous = 0
  if (state !== undefined) {
    if (state.index === index) {
      current = state.current
      previous = state.previous
    } else if (state.index === index - 1) {
      previous = state.current
    } else if (state.index > index) {
      // Another instance's clock is ahead: use its sub-window, at its start (the strictest point).
      index = state.index
      elapsed = 0
      current = state.current
      previous = state.previous
    }
  }
  const weighted = previous * (windowMs - elapsed) // previous's weight, scaled by windowMs
  const allowed = weighted + (current + 1) * windowMs <= max * windowMs
  if (allowed) current++
  const remaining = Math.max(0, Math.floor((max * windowMs - weighted - current * windowMs) / windowMs))
  const resetMs = current > 0 ? 2 * windowMs - elapsed : previous > 0 ? windowMs - elapsed : 0
  if (allowed) {
    return { decision: { allowed, remaining, resetMs, retryAfterMs: 0 }, state: { index, current, previous } }
  }
  // Earliest point at which one more request fits: later in this sub-window while `previous`
  // decays, else in the next one (where `current` becomes the decaying previous count).
  let retryAfterMs = -1
  if (current < max && previous > 0) {
    const at = windowMs - Math.floor((max - current - 1) * windowMs / previous)
    if (at < windowMs) retryAfterMs = at - elapsed
  }
  if (retryAfterMs < 0) {
    const at = current > 0 ? windowMs - Math.floor((max - 1) * windowMs / current) : 0
    retryAfterMs = windowMs - elapsed + at
  }
  return { decision: { allowed, remaining: 0, resetMs, retryAfterMs }, state: null }
}

/**
 * token-bucket: a bucket of `max` tokens, full at first, refilled continuously at `max` tokens
 * per `windowMs`; a request takes one token, or is refused (taking none) when less than one is
 * left. Kept as `level = tokens × windowMs` so that every step is integer arithmetic.
 */
export function tokenBucket (state: TokenBucketState | undefined, now: number, windowMs: number, max: number): Transition<TokenBucketState> {
  const capacity = max * windowMs
  let level = capacity
  let at = now
  if (state !== undefined) {
    // A clock behind the last writer's never refills the bucket backwards.
    if (now < state.at) at = state.at
    const elapsed = at - state.at
    level = elapsed >= windowMs ? capacity : Math.min(capacity, state.level + elapsed * max)
  }
  if (level >= windowMs) {
    level -= windowMs
    const resetMs = Math.ceil((capacity - level) / max)
    return {
      decision: { allowed: true, remaining: Math.floor(level / windowMs), resetMs, retryAfterMs: 0 },
      state: { level, at }
    }
  }
  const resetMs = Math.ceil((capacity - level) / max)
  return {
    decision: { allowed: false, remaining: 0, resetMs, retryAfterMs: Math.ceil((windowMs - level) / max) },
    state: null
  }
}
