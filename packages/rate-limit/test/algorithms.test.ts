import t from 'tap'
import type { Decision } from '../src/algorithms.js'
import { MemoryStore } from '../src/store/memory.js'

const T0 = 1_800_000_000_000 // a multiple of one minute: sub-windows start here
const MINUTE = 60_000

function run (algorithm: 'fixed-window' | 'sliding-window' | 'token-bucket', max: number, windowMs = MINUTE) {
  const store = new MemoryStore(1000)
  return (at: number, key = 'k'): Decision => store.consume(algorithm, key, at, windowMs, max)
}

function admitted (consume: (at: number) => Decision, at: number, count: number): number {
  let n = 0
  for (let i = 0; i < count; i++) if (consume(at).allowed) n++
  return n
}

t.test('fixed-window: the window opens at the first request and admits max in it', async (t) => {
  const consume = run('fixed-window', 3)
  const start = T0 + 12_345
  t.same(consume(start), { allowed: true, remaining: 2, resetMs: MINUTE, retryAfterMs: 0 })
  t.same(consume(start + 1000), { allowed: true, remaining: 1, resetMs: 59_000, retryAfterMs: 0 })
  t.same(consume(start + 2000), { allowed: true, remaining: 0, resetMs: 58_000, retryAfterMs: 0 })
  t.same(consume(start + 59_999), { allowed: false, remaining: 0, resetMs: 1, retryAfterMs: 1 })
  t.equal(admitted(consume, start + 59_999, 5), 0, 'refusals are not counted, and nothing more is admitted')
  t.same(consume(start + MINUTE), { allowed: true, remaining: 2, resetMs: MINUTE, retryAfterMs: 0 }, 'a new window opens at start + window')
  t.equal(admitted(consume, start + MINUTE + 1, 10), 2)
  t.equal(run('fixed-window', 3)(start).allowed, true)
})

t.test('fixed-window: buckets are independent', async (t) => {
  const consume = run('fixed-window', 1)
  t.equal(consume(T0, 'a').allowed, true)
  t.equal(consume(T0, 'b').allowed, true)
  t.equal(consume(T0, 'a').allowed, false)
})

t.test('sliding-window: the previous sub-window counts by the part of it still inside the window', async (t) => {
  const consume = run('sliding-window', 10)
  t.equal(admitted(consume, T0, 20), 10, 'a burst at the start of a sub-window admits max')
  // Refused with current = max: the next request fits once the full previous count has
  // decayed below max - 1, 6 s into the next sub-window: 60 s + 6 s from T0.
  t.same(consume(T0 + 1000), { allowed: false, remaining: 0, resetMs: 119_000, retryAfterMs: 65_000 })
  t.equal(consume(T0 + MINUTE + 5_999).allowed, false, 'estimate 10 × 54001/60000 + 1 > 10')
  t.same(consume(T0 + MINUTE + 6_000), { allowed: true, remaining: 0, resetMs: 114_000, retryAfterMs: 0 }, 'estimate 10 × 0.9 + 1 = 10')
  // Half-way: the previous 10 weigh 5, plus the 1 admitted: 4 more fit.
  const half = consume(T0 + MINUTE + 30_000)
  t.same(half, { allowed: true, remaining: 3, resetMs: 90_000, retryAfterMs: 0 })
  t.equal(admitted(consume, T0 + MINUTE + 30_000, 10), 3)
  // Now current = 5 and previous = 10 at e = 30 s: the next fits when 10 × (60 - e)/60 ≤ 4, at e = 36 s.
  t.same(consume(T0 + MINUTE + 30_000), { allowed: false, remaining: 0, resetMs: 90_000, retryAfterMs: 6_000 })
  t.equal(consume(T0 + MINUTE + 35_999).allowed, false)
  t.equal(consume(T0 + MINUTE + 36_000).allowed, true)
  // Two sub-windows later nothing is left.
  t.equal(admitted(consume, T0 + 3 * MINUTE, 20), 10)
  t.equal(admitted(consume, T0 + 6 * MINUTE + 1, 20), 10, 'a gap of several windows starts afresh')
})

t.test('sliding-window: tolerance against an exact sliding log is documented, not hidden', async (t) => {
  // The counter assumes the previous sub-window's requests were spread evenly. When they all
  // came at its very end, a window of length `window` straddling the boundary can hold up to
  // about twice max: the README states this worst case.
  const consume = run('sliding-window', 10)
  t.equal(admitted(consume, T0 + MINUTE - 1, 10), 10, '10 at the very end of one sub-window')
  let extra = 0
  for (let e = 0; e < MINUTE - 1; e += 1000) extra += admitted(consume, T0 + MINUTE + e, 1)
  t.ok(extra >= 9 && extra <= 10, `then ${extra} more within the next minute`)
})

t.test('token-bucket: max tokens at first, refilled at max per window, one per request', async (t) => {
  const consume = run('token-bucket', 10)
  t.same(consume(T0), { allowed: true, remaining: 9, resetMs: 6_000, retryAfterMs: 0 })
  t.equal(admitted(consume, T0, 20), 9, 'a full bucket admits a burst of max')
  t.same(consume(T0), { allowed: false, remaining: 0, resetMs: MINUTE, retryAfterMs: 6_000 })
  t.same(consume(T0 + 5_999), { allowed: false, remaining: 0, resetMs: 54_001, retryAfterMs: 1 }, 'refusals take no token')
  t.same(consume(T0 + 6_000), { allowed: true, remaining: 0, resetMs: MINUTE, retryAfterMs: 0 }, 'one token every window/max')
  t.equal(consume(T0 + 6_000).allowed, false)
  t.same(consume(T0 + 36_000), { allowed: true, remaining: 4, resetMs: 36_000, retryAfterMs: 0 }, 'half a window refills half the bucket; 6 tokens short of full')
  t.equal(admitted(consume, T0 + 10 * MINUTE, 20), 10, 'never more than max, however long the pause')
})

t.test('token-bucket: a clock behind the last write refills nothing', async (t) => {
  const consume = run('token-bucket', 2)
  t.equal(admitted(consume, T0, 2), 2)
  t.equal(consume(T0 - 30_000).allowed, false)
  t.equal(consume(T0 + 29_999).allowed, false)
  t.equal(consume(T0 + 30_000).allowed, true)
})

t.test('memory store: bounded by maxKeys, expired entries swept', async (t) => {
  const store = new MemoryStore(3)
  for (let i = 0; i < 10; i++) store.consume('fixed-window', `k${i}`, T0, MINUTE, 5)
  t.equal(store.size, 3, 'never more than maxKeys buckets')
  t.equal(store.consume('fixed-window', 'k9', T0, MINUTE, 5).remaining, 3, 'the newest buckets are kept')
  t.equal(store.consume('fixed-window', 'k0', T0, MINUTE, 5).remaining, 4, 'the oldest were dropped')
  store.sweep(T0 + MINUTE)
  t.equal(store.size, 0)
})

t.test('memory store: a flood of fresh keys does not drop a spent bucket (no reset of an exhausted limit)', async (t) => {
  const store = new MemoryStore(100)
  t.equal(store.consume('fixed-window', 'login|attacker', T0, MINUTE, 2).allowed, true)
  t.equal(store.consume('fixed-window', 'login|attacker', T0, MINUTE, 2).allowed, true)
  t.equal(store.consume('fixed-window', 'login|attacker', T0, MINUTE, 2).allowed, false, 'spent')
  for (let i = 0; i < 10_000; i++) store.consume('fixed-window', `junk|${i}`, T0 + 1, MINUTE, 2)
  t.equal(store.size, 100, 'still bounded')
  t.equal(store.consume('fixed-window', 'login|attacker', T0 + 2, MINUTE, 2).allowed, false, 'the spent bucket is still there')
})

t.test('memory store: when every old entry is spent, one still goes (memory stays bounded)', async (t) => {
  const store = new MemoryStore(20)
  for (let i = 0; i < 100; i++) store.consume('fixed-window', `spent|${i}`, T0, MINUTE, 1)
  t.equal(store.size, 20)
})
