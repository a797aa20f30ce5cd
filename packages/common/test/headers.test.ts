import t from 'tap'
import { connectionTokens, headerAlias, HeaderAliases, isSaneRequestId, nextTraceparent, parseTraceparent, removeAliasedHeaders, requestIdFor } from '../src/index.js'

t.test('header aliases fold case, underscores and dots', async (t) => {
  t.equal(headerAlias('X_User.ID'), 'x-user-id')
  const headers: Record<string, unknown> = { 'x-user-id': '1', x_user_id: '2', 'x.user.id': '3', 'X-USER-ID': '4', other: 'kept' }
  t.equal(removeAliasedHeaders(headers, new Set(['x-user-id'])), 4)
  t.same(headers, { other: 'kept' })
})

t.test('connection tokens are split and lower-cased', async (t) => {
  t.same(connectionTokens('keep-alive, X-User-Id'), ['keep-alive', 'x-user-id'])
  t.same(connectionTokens(['a', 'b, c']), ['a', 'b', 'c'])
  t.same(connectionTokens(undefined), [])
  t.same(connectionTokens('Keep-Alive'), ['keep-alive'], 'one token, lower-cased')
  t.same(connectionTokens('  X-Secret\t'), ['x-secret'], 'one token, trimmed')
  t.same(connectionTokens(''), [])
  t.same(connectionTokens('   '), [])
  t.same(connectionTokens(' , ,'), [], 'only separators')
  t.same(connectionTokens(['Close']), ['close'])
})

t.test('request ids from clients are kept only when sane', async (t) => {
  t.ok(isSaneRequestId('abc-123_.:X'))
  t.notOk(isSaneRequestId(''))
  t.notOk(isSaneRequestId('a'.repeat(129)))
  t.notOk(isSaneRequestId('bad id'))
  t.notOk(isSaneRequestId('x\r\ny'))
  t.equal(requestIdFor('keep-me'), 'keep-me')
  t.match(requestIdFor('no way'), /^[0-9a-f-]{36}$/)
})

t.test('traceparent keeps a valid trace id and refuses invalid ones', async (t) => {
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  t.same(parseTraceparent(incoming), { version: '00', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', flags: '01' })
  t.match(nextTraceparent(incoming), /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/)
  t.not(nextTraceparent(incoming), incoming)
  for (const bad of ['', 'garbage', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra']) {
    t.equal(parseTraceparent(bad), null, bad)
  }
  t.match(nextTraceparent('garbage'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
})

t.test('generated trace and span ids are distinct across many calls', async (t) => {
  const ids = new Set<string>()
  for (let i = 0; i < 1000; i++) ids.add(nextTraceparent(undefined))
  t.equal(ids.size, 1000, 'no repeats across pool refills')
  for (const id of ids) t.match(id, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  const traceIds = new Set([...ids].map((id) => id.slice(3, 35)))
  const spanIds = new Set([...ids].map((id) => id.slice(36, 52)))
  t.equal(traceIds.size, 1000, 'trace ids never repeat')
  t.equal(spanIds.size, 1000, 'span ids never repeat')
  t.notOk([...ids].some((id) => id.slice(3, 35).includes(id.slice(36, 52))), 'a span id is never cut from its own trace id')
})

t.test('HeaderAliases matches names as they arrive, in objects and raw header lists', async (t) => {
  const aliases = new HeaderAliases(['x-user-id', 'authorization'])
  for (const name of ['x-user-id', 'X_User.Id', 'Authorization', 'AUTHORIZATION']) t.ok(aliases.has(name), name)
  for (const name of ['x-user-ids', 'host', 'x-user-i', 'x-user-\u0130d']) t.notOk(aliases.has(name), name)
  const raw = ['Host', 'a', 'X_USER_ID', 'spoofed', 'Authorization', 'Bearer x', 'Accept', '*/*']
  t.equal(aliases.removeFromRaw(raw), 2)
  t.same(raw, ['Host', 'a', 'Accept', '*/*'])
  const headers: Record<string, unknown> = { host: 'a', 'x.user.id': '1', authorization: 'x' }
  t.equal(aliases.removeFrom(headers), 2)
  t.same(headers, { host: 'a' })
})

t.test('HeaderAliases.without copies the other headers in order, or gives the same object back', async (t) => {
  const aliases = new HeaderAliases(['authorization', 'x-user-id'])
  const clean = { host: 'a', accept: '*/*' }
  t.equal(aliases.without(clean), clean, 'nothing to remove: the same object, untouched')
  const headers = { host: 'a', authorization: 'Bearer x', accept: '*/*', x_user_id: 'spoofed', 'x-trace': ['1', '2'] }
  const kept = aliases.without(headers)
  t.not(kept, headers, 'a new object')
  t.strictSame(Object.entries(kept), [['host', 'a'], ['accept', '*/*'], ['x-trace', ['1', '2']]], 'the others, in their order')
  t.equal(headers.authorization, 'Bearer x', 'the original is left as it was')
})
