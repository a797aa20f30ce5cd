import t from 'tap'
import { createRequire } from 'node:module'
import { FrameReader, frame } from '../src/transport/tcp.js'
import { patternRoute, replyError, PendingCalls, NO_MESSAGE_HANDLER, targetLabel } from '../src/protocol.js'
import { errors } from '../src/index.js'

const require = createRequire(import.meta.url)
const { transformPatternToRoute } = require('@nestjs/microservices/utils/transform-pattern.utils.js') as { transformPatternToRoute: (pattern: unknown) => string }

t.test('object patterns are serialised with sorted keys, exactly as NestJS does', async (t) => {
  const patterns: unknown[] = [
    'get_user',
    42,
    { cmd: 'sum' },
    { role: 'math', cmd: 'sum' },
    { b: 1, a: { z: 'x', y: 2 }, c: 'q"uote\\' },
    { Zeta: 1, alpha: 2, beta: 'é' },
    { cmd: 'x', flag: true, none: null }
  ]
  for (const pattern of patterns) t.equal(patternRoute(pattern), transformPatternToRoute(pattern), JSON.stringify(pattern))
  t.equal(patternRoute({ role: 'math', cmd: 'sum' }), '{"cmd":"sum","role":"math"}')
})

t.test('frames count UTF-16 code units, and a character split between chunks survives', async (t) => {
  const packet = { pattern: 'echo', data: 'é😀✓', id: '1' }
  const text = frame(packet)
  const json = JSON.stringify(packet)
  t.equal(text, `${json.length}#${json}`)
  t.not(json.length, Buffer.byteLength(json), 'code units, not bytes')
  const bytes = Buffer.from(text + text)
  const reader = new FrameReader()
  const frames: string[] = []
  for (let i = 0; i < bytes.length; i++) frames.push(...reader.push(bytes.subarray(i, i + 1)))
  t.same(frames.map((f) => JSON.parse(f)), [packet, packet])
  t.throws(() => new FrameReader().push(Buffer.from('x1#{}')), /corrupt/)
  t.throws(() => new FrameReader(10).push(Buffer.from('11#')), /over the limit/)
})

t.test('reply errors map to 4xx with the message, 503 for a missing handler, else 502', async (t) => {
  const rejected = replyError({ statusCode: 404, message: 'nope' }) as Error & { statusCode: number }
  t.ok(rejected instanceof errors.RejectedError)
  t.equal(rejected.statusCode, 404)
  t.equal(rejected.message, 'nope')
  t.equal((replyError({ status: 422, message: ['a', 'b'] }) as Error & { statusCode: number }).statusCode, 422)
  t.equal(replyError({ status: 422, message: ['a', 'b'] }).message, 'a; b')
  t.ok(replyError(NO_MESSAGE_HANDLER) instanceof errors.NoResponderError)
  for (const err of [{ status: 'error', message: 'Internal server error' }, { statusCode: 500, message: 'db' }, 'text', [1]]) {
    const error = replyError(err)
    t.ok(error instanceof errors.BadGatewayError, JSON.stringify(err))
    t.notMatch(error.message, /db|Internal/)
  }
})

t.test('pending calls: several responses until isDisposed, unknown ids ignored, late replies dropped', async (t) => {
  const pending = new PendingCalls()
  const call = pending.add('a', 1000, () => new Error('timeout'))
  t.equal(pending.settle({ id: 'zzz', response: 1, isDisposed: true }), false)
  t.equal(pending.settle({ id: 'a', response: 1 }), true)
  t.equal(pending.settle({ id: 'a', response: 2, isDisposed: true }), true)
  t.same(await call, { values: [1, 2] })
  const late = pending.add('b', 10, () => new Error('timeout'))
  await t.rejects(late, /timeout/)
  t.equal(pending.settle({ id: 'b', response: 1, isDisposed: true }), false, 'dropped')
  t.equal(pending.size, 0)
})

t.test('target labels never carry credentials', async (t) => {
  t.equal(targetLabel('redis://user:secret@127.0.0.1:6379/2'), 'redis://127.0.0.1:6379/2')
  t.equal(targetLabel('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222')
})
