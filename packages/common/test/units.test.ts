import t from 'tap'
import { parseDuration, parseSize } from '../src/index.js'

t.test('durations accept milliseconds and unit strings', async (t) => {
  t.equal(parseDuration(250), 250)
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('10s'), 10_000)
  t.equal(parseDuration('1m'), 60_000)
  t.equal(parseDuration('1h'), 3_600_000)
  t.equal(parseDuration('1.5s'), 1500)
  t.equal(parseDuration('1500'), 1500)
})

t.test('a bad duration names its path', async (t) => {
  t.throws(() => parseDuration('10 parsecs', 'upstreams.posts.timeout'), /upstreams\.posts\.timeout: invalid duration "10 parsecs"/)
  t.throws(() => parseDuration(-1, 'x'), /x: invalid duration/)
  t.throws(() => parseDuration(true, 'x'), /x: invalid duration/)
})

t.test('sizes are binary', async (t) => {
  t.equal(parseSize('1mb'), 1_048_576)
  t.equal(parseSize('512kb'), 524_288)
  t.equal(parseSize('10b'), 10)
  t.equal(parseSize(42), 42)
  t.throws(() => parseSize('1 megabyte', 'server.bodyLimit'), /server\.bodyLimit: invalid size/)
  t.throws(() => parseSize(1.5, 'x'), /x: invalid size/)
})

t.test('sha256 matches createHash in every encoding', async (t) => {
  const { createHash } = await import('node:crypto')
  const { sha256 } = await import('../src/index.js')
  for (const value of ['', 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln', 'ünïcödé ✓']) {
    for (const encoding of ['base64', 'base64url', 'hex'] as const) t.equal(sha256(value, encoding), createHash('sha256').update(value).digest(encoding))
    t.same(sha256(value, 'buffer'), createHash('sha256').update(value).digest())
  }
})
