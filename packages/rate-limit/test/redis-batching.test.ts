import t from 'tap'
import type { Decision } from '../src/algorithms.js'
import { RedisStore } from '../src/store/redis.js'
import { cleanupOnTeardown, connectRedis, uniquePrefix } from './helpers/redis.js'

t.test('the decisions of one event-loop turn leave in one write, and each is decided in order', async (t) => {
  const client = await connectRedis(t)
  const prefix = uniquePrefix('batching')
  cleanupOnTeardown(t, prefix)
  const store = new RedisStore(client, prefix, 1000, false)
  const stream = client.stream as unknown as { writableCorked: number }

  const decisions = new Array<Decision | null>(20).fill(null)
  const done = Promise.all(decisions.map(async (_, i) => {
    await new Promise<void>((resolve, reject) => {
      store.consume('fixed-window', 'shared', 1_800_000_000_000, 60_000, 10, (error, decision) => {
        if (error !== null) reject(error)
        else {
          decisions[i] = decision
          resolve()
        }
      })
    })
  }))
  t.equal(stream.writableCorked, 1, 'held while the turn goes on')
  await done
  t.equal(stream.writableCorked, 0, 'sent when the turn ended')
  t.same(decisions.map((decision) => decision!.allowed), [...Array(10).fill(true), ...Array(10).fill(false)], 'the first 10 admitted, in the order asked')
  t.same(decisions.slice(0, 10).map((decision) => decision!.remaining), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])

  // The next turn is corked and sent again on its own.
  const next = await new Promise<Decision>((resolve, reject) => {
    store.consume('fixed-window', 'other', 1_800_000_000_000, 60_000, 10, (error, decision) => { if (error !== null) reject(error); else resolve(decision!) })
  })
  t.equal(next.remaining, 9)
  t.equal(stream.writableCorked, 0)
})
