import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { bucketKey, clientKey, digest } from '../src/keys.js'
import type { ResolvedRule } from '../src/options.js'

const rule = { by: 'user', algorithm: 'sliding-window', windowMs: 60_000, max: 10 } as unknown as ResolvedRule

function request (identity: unknown): FastifyRequest {
  return { tollgateIdentity: identity, ip: '10.0.0.1', headers: {}, routeOptions: { config: { tollgate: { route: '/api' } } } } as unknown as FastifyRequest
}

t.test('by user: the key is the digest of the id, the same whether the identity is a shared frozen object or not', async (t) => {
  const frozen = Object.freeze({ id: 'alice', method: 'jwt', roles: [], permissions: [] })
  const expected = `u:${digest('alice')}`
  t.equal(clientKey(request(frozen), rule, 56), expected)
  t.equal(clientKey(request(frozen), rule, 56), expected, 'second time, from the per-identity memo')
  const plain = { id: 'alice', method: 'jwt', roles: [], permissions: [] }
  t.equal(clientKey(request(plain), rule, 56), expected)
  plain.id = 'bob'
  t.equal(clientKey(request(plain), rule, 56), `u:${digest('bob')}`, 'a mutable identity is never memoised')
  t.equal(clientKey(request(null), rule, 56), 'i:10.0.0.1', 'anonymous falls back to the IP')
})

t.test('bucketKey takes a precomputed route label, else reads it from the request', async (t) => {
  const frozen = Object.freeze({ id: 'alice', method: 'jwt', roles: [], permissions: [] })
  t.equal(bucketKey(request(frozen), rule, 'sw:60000|', 56), `sw:60000|/api|u:${digest('alice')}`)
  t.equal(bucketKey(request(frozen), rule, 'sw:60000|', 56, '/api'), `sw:60000|/api|u:${digest('alice')}`)
})
