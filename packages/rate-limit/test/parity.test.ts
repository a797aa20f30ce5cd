import t from 'tap'
import type { Decision } from '../src/algorithms.js'
import type { Algorithm } from '../src/options.js'
import { MemoryStore } from '../src/store/memory.js'
import { RedisStore } from '../src/store/redis.js'
import { cleanupOnTeardown, connectRedis, uniquePrefix } from './helpers/redis.js'

/** A small seeded PRNG (mulberry32): the same script of requests on every run. */
function random (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6D2B79F5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

interface Step { at: number, key: string }

/** Bursts, pauses of every length, and now and then a clock that steps back (skew). */
function script (seed: number, windowMs: number, length: number): Step[] {
  const next = random(seed)
  const steps: Step[] = []
  let at = 1_800_000_000_000 + Math.floor(next() * windowMs)
  for (let i = 0; i < length; i++) {
    const r = next()
    if (r < 0.5) at += 0
    else if (r < 0.8) at += Math.floor(next() * windowMs / 10)
    else if (r < 0.95) at += Math.floor(next() * windowMs * 1.5)
    else at -= Math.floor(next() * windowMs / 20)
    steps.push({ at, key: `k${Math.floor(next() * 3)}` })
  }
  return steps
}

const ALGORITHMS: Algorithm[] = ['fixed-window', 'sliding-window', 'token-bucket']

for (const algorithm of ALGORITHMS) {
  t.test(`${algorithm}: the memory store and the Redis script decide identically on one script of requests`, async (t) => {
    const client = await connectRedis(t)
    const prefix = uniquePrefix(`parity-${algorithm}`)
    cleanupOnTeardown(t, prefix)
    const redis = new RedisStore(client, prefix, 1000, false)
    const memory = new MemoryStore(1000)
    for (const [seed, max, windowMs] of [[1, 5, 60_000], [2, 1, 10_000], [3, 7, 3_600_000], [4, 3, 1_000]] as const) {
      const steps = script(seed, windowMs, 250)
      const fromMemory: Decision[] = []
      const fromRedis: Decision[] = []
      for (const { at, key } of steps) {
        const bucket = `${seed}:${key}`
        fromMemory.push(memory.consume(algorithm, bucket, at, windowMs, max))
        fromRedis.push(await new Promise<Decision>((resolve, reject) => {
          redis.consume(algorithm, bucket, at, windowMs, max, (error, decision) => { if (error !== null) reject(error); else resolve(decision!) })
        }))
      }
      t.same(fromRedis, fromMemory, `seed ${seed}, max ${max}, window ${windowMs} ms`)
      const allowed = fromMemory.filter((d) => d.allowed).length
      t.ok(allowed > 0 && allowed < steps.length, `the script exercises both outcomes (${allowed}/${steps.length} admitted)`)
    }
  })
}
