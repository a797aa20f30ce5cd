// Issue 3: failed authentication counts toward the client IP's rate limit, so
// guessing credentials on a protected route is limited like any other traffic.
import t, { type Test } from 'tap'
import { createSigner } from 'fast-jwt'
import { request as httpRequest } from 'node:http'
import { request } from 'undici'
import { startGateway } from './helpers/hostile.js'
import { echoUpstream } from './helpers/upstream.js'

const SECRET = 'a-test-secret-that-is-long-enough-32+'
const sign = createSigner({ key: SECRET, algorithm: 'HS256' })

/** A gateway with one JWT-protected route limited to `max` a minute per user, in front of a recording upstream. */
async function limitedGateway (t: Test, max: number) {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, {
    version: 1,
    auth: { jwt: { secret: SECRET, algorithms: ['HS256'] } },
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [{ prefix: '/api', upstream: 'echo', rateLimit: { max, window: '1m', by: 'user' } }]
  })
  return { base, upstream }
}

t.test('401s from one IP exhaust its budget on the route: then 429 before authentication', async (t) => {
  const { base, upstream } = await limitedGateway(t, 3)
  const good = sign({ sub: 'user-1', exp: Math.floor(Date.now() / 1000) + 300 })

  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    const response = await request(`${base}/api/x`, { headers: { authorization: 'Bearer guessed.token.value' } })
    statuses.push(response.statusCode)
    if (response.statusCode === 429) {
      t.match(response.headers['retry-after'], /^\d+$/)
      t.equal(response.headers['ratelimit-remaining'], '0')
    }
    await response.body.dump()
  }
  t.same(statuses, [401, 401, 401, 401, 429], 'the budget of 3 is spent by failures, then the IP is refused')

  const blocked = await request(`${base}/api/x`, { headers: { authorization: `Bearer ${good}` } })
  t.equal(blocked.statusCode, 429, 'refused before authentication, whatever it sends now')
  await blocked.body.dump()
  t.equal(upstream.seen.length, 0, 'nothing reached the upstream')

  // Another client: the same request from another loopback address.
  const otherStatus = await new Promise<number | undefined>((resolve, reject) => {
    httpRequest(`${base}/api/x`, { headers: { authorization: `Bearer ${good}` }, localAddress: '127.0.0.2', agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode)
    }).on('error', reject).end()
  })
  t.equal(otherStatus, 200, 'another IP is not affected')
})

t.test('successful requests do not fill the failures bucket', async (t) => {
  const { base } = await limitedGateway(t, 2)
  const now = Math.floor(Date.now() / 1000)
  const statuses: number[] = []
  // Two users from one IP, two requests each: each user has their own budget of 2.
  for (const sub of ['a', 'a', 'b', 'b']) {
    const response = await request(`${base}/api/x`, { headers: { authorization: `Bearer ${sign({ sub, exp: now + 300 })}` } })
    statuses.push(response.statusCode)
    await response.body.dump()
  }
  t.same(statuses, [200, 200, 200, 200])
})
