// Fastify 5.12.8 fails closed on a numeric `trustProxy` (it trusts no hop at all), so a
// gateway configured with a hop count took every client to be its load balancer: one
// shared IP rate-limit bucket, and the balancer's address in X-Forwarded-For, while the
// gateway's own header stripping treated the same peer as trusted.
import t from 'tap'
import { request } from 'undici'
import type { Manifest } from '../../src/index.js'
import { startGateway } from '../helpers/hostile.js'
import { echoUpstream, type EchoUpstream } from '../helpers/upstream.js'

function manifest (upstream: EchoUpstream, trustProxy: number): Manifest {
  return {
    version: 1,
    server: { trustProxy },
    rateLimit: { algorithm: 'fixed-window', default: { max: 1, window: '1m', by: 'ip' } },
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [{ prefix: '/api', upstream: 'echo', auth: false }]
  }
}

async function statusFor (base: string, forwardedFor: string): Promise<number> {
  const response = await request(`${base}/api/x`, { headers: { 'x-forwarded-for': forwardedFor } })
  await response.body.dump()
  return response.statusCode
}

t.test('trustProxy: 1 takes the client IP from X-Forwarded-For and appends the peer to it', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, manifest(upstream, 1))

  t.equal(await statusFor(base, '6.6.6.6'), 200)
  t.equal(upstream.seen[0]!.headers['x-forwarded-for'], '6.6.6.6, 127.0.0.1', 'the trusted peer is appended, not replacing the chain')
  t.equal(await statusFor(base, '6.6.6.6'), 429, 'the same client IP shares one bucket')
  t.equal(await statusFor(base, '7.7.7.7'), 200, 'another client IP behind the same proxy has its own bucket')
})

t.test('trustProxy: 2 trusts the peer and one more hop: the client is the next address to the left', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, manifest(upstream, 2))

  t.equal(await statusFor(base, '1.1.1.1, 9.9.9.9'), 200)
  t.equal(await statusFor(base, '1.1.1.1, 8.8.8.8'), 429, 'client 1.1.1.1 through another trusted hop: same bucket')
  t.equal(await statusFor(base, '2.2.2.2, 9.9.9.9'), 200, 'client 2.2.2.2: its own bucket')
})
