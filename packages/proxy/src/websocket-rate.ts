/**
 * A token bucket of `rate` messages a second holding at most `rate` tokens: a full bucket
 * lets a burst of `rate` messages through, then one more every `1000 / rate` ms. Returns
 * the admission check (true takes a token). `now` is the plugin's clock, in milliseconds.
 */
export function messageBucket (rate: number, now: () => number): () => boolean {
  let tokens = rate
  let last = now()
  return () => {
    const at = now()
    // A clock that steps back adds nothing (and takes nothing).
    if (at > last) tokens = Math.min(rate, tokens + (at - last) * rate / 1000)
    last = Math.max(last, at)
    if (tokens < 1) return false
    tokens -= 1
    return true
  }
}
