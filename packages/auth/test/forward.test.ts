import t, { type Test } from 'tap'
import Fastify from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { bearer, buildApp, claims, clock, SECRET, signHmac, ISSUER, AUDIENCE } from './helpers/index.js'
import type { AuthOptions } from '../src/index.js'

type Mode = 'allow' | 'deny401' | 'deny403' | 'hang' | 'redirect' | 'error500' | 'no-id' | 'deny404' | 'slow-by-uri'

/** A scripted forward-auth service: answers by `mode`, records what it received. */
async function authService (t: Test): Promise<{ url: string, setMode: (mode: Mode) => void, seen: IncomingHttpHeaders[], calls: () => number }> {
  let mode: Mode = 'allow'
  const seen: IncomingHttpHeaders[] = []
  const server = Fastify({ forceCloseConnections: true })
  server.get('/validate', async (request, reply) => {
    seen.push(request.headers)
    switch (mode) {
      case 'allow': {
        const user = request.headers.cookie?.replace(/^session=/, '') ?? 'anonymous'
        return await reply.header('x-user-id', user).header('x-user-roles', 'user, member').send('')
      }
      case 'no-id': return await reply.code(200).send('')
      case 'deny401': return await reply.code(401).header('www-authenticate', 'Cookie realm="app"').send({ error: 'no session' })
      case 'deny403': return await reply.code(403).send({ error: 'banned' })
      case 'deny404': return await reply.code(404).send('')
      case 'redirect': return await reply.redirect('http://127.0.0.1:1/login', 302)
      case 'error500': return await reply.code(500).send('boom')
      case 'hang': return await new Promise(() => undefined)
      case 'slow-by-uri': {
        // Slow enough for concurrent requests to overlap; denies any URI naming a secret.
        await new Promise((resolve) => setTimeout(resolve, 150))
        if (String(request.headers['x-forwarded-uri']).includes('secret')) return await reply.code(403).send('')
        return await reply.header('x-user-id', 'alice').send('')
      }
    }
  })
  await server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => server.close())
  const { port } = server.server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}/validate`, setMode: (next) => { mode = next }, seen, calls: () => seen.length }
}

function forwardOptions (url: string, extra: Partial<NonNullable<AuthOptions['forward']>> = {}): AuthOptions {
  return {
    forward: { url, forwardHeaders: ['authorization', 'cookie'], identityHeaders: { id: 'x-user-id', roles: 'x-user-roles' }, timeout: '300ms', ...extra },
    identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' }
  }
}

t.test('a 2xx allows, and its headers give the identity and the identity headers', async (t) => {
  const service = await authService(t)
  const { app } = await buildApp(t, forwardOptions(service.url))
  const res = await app.inject({ url: '/forward?q=1', headers: { cookie: 'session=alice' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().identity.id, 'alice')
  t.equal(res.json().identity.method, 'forward')
  t.same(res.json().identity.roles, ['user', 'member'])
  t.equal(res.json().headers['x-user-id'], 'alice')
  t.equal(res.json().headers['x-user-roles'], 'user,member')
})

t.test('the forward request carries the configured headers and the gateway-computed method, URI and client IP only', async (t) => {
  const service = await authService(t)
  const { app } = await buildApp(t, forwardOptions(service.url))
  await app.inject({
    method: 'GET',
    url: '/forward?page=2',
    headers: {
      cookie: 'session=alice',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-method': 'DELETE',
      'x-forwarded-uri': '/admin',
      'x-forwarded-host': 'evil.example',
      forwarded: 'for=6.6.6.6',
      'x-other': 'not forwarded'
    },
    remoteAddress: '10.1.2.3'
  })
  const got = service.seen[0]!
  t.equal(got.cookie, 'session=alice')
  t.equal(got['x-forwarded-method'], 'GET')
  t.equal(got['x-forwarded-uri'], '/forward?page=2')
  t.equal(got['x-forwarded-for'], '10.1.2.3')
  t.equal(got['x-forwarded-proto'], 'http')
  t.not(got['x-forwarded-host'], 'evil.example')
  t.equal(got.forwarded, undefined)
  t.equal(got['x-other'], undefined)
})

t.test('401 and 403 from the service pass to the client; other 4xx deny', async (t) => {
  const service = await authService(t)
  const { app, failures } = await buildApp(t, forwardOptions(service.url))
  service.setMode('deny401')
  let res = await app.inject({ url: '/forward', headers: { cookie: 'session=x' } })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Cookie realm="app"')
  service.setMode('deny403')
  res = await app.inject({ url: '/forward', headers: { cookie: 'session=x' } })
  t.equal(res.statusCode, 403)
  service.setMode('deny404')
  res = await app.inject({ url: '/forward', headers: { cookie: 'session=x' } })
  t.equal(res.statusCode, 401)
  t.same(failures.map((f) => f.reason), ['invalid', 'forbidden', 'invalid'])
})

for (const mode of ['redirect', 'error500', 'hang', 'no-id'] as const) {
  t.test(`the service answering ${mode} fails closed with 503 and Retry-After`, async (t) => {
    const service = await authService(t)
    service.setMode(mode)
    const { app, failures } = await buildApp(t, forwardOptions(service.url))
    const res = await app.inject({ url: '/forward', headers: { cookie: 'session=alice' } })
    t.equal(res.statusCode, 503)
    t.equal(res.headers['retry-after'], '5')
    t.equal(res.json().code, 'TOLLGATE_AUTH_UNAVAILABLE')
    t.notOk(res.body.includes('127.0.0.1'), 'no service address in the body')
    t.same(failures, [{ route: '/forward', reason: 'unavailable' }])
  })
}

t.test('a service that is down fails closed with 503', async (t) => {
  const service = await authService(t)
  const url = service.url
  const down = Fastify()
  await down.listen({ port: 0, host: '127.0.0.1' })
  const { port } = down.server.address() as { port: number }
  await down.close()
  const { app } = await buildApp(t, forwardOptions(url.replace(/:\d+\//, `:${port}/`)))
  const res = await app.inject({ url: '/forward', headers: { cookie: 'session=alice' } })
  t.equal(res.statusCode, 503)
  t.ok(res.headers['retry-after'])
})

t.test('no forwarded credential at all is 401 missing, and the service is not called', async (t) => {
  const service = await authService(t)
  const { app } = await buildApp(t, forwardOptions(service.url))
  const res = await app.inject({ url: '/forward' })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tollgate"')
  t.equal(service.calls(), 0)
})

t.test('allow decisions are cached per credential for at most cacheTtl; denials are not cached', async (t) => {
  const time = clock()
  const service = await authService(t)
  const { app } = await buildApp(t, { ...forwardOptions(service.url, { cacheTtl: '30s' }), now: time.now })
  const call = async (session: string): Promise<number> => (await app.inject({ url: '/forward', headers: { cookie: `session=${session}` } })).statusCode
  t.equal(await call('alice'), 200)
  t.equal(await call('alice'), 200)
  t.equal(service.calls(), 1, 'second call served from cache')
  t.equal(await call('bob'), 200)
  t.equal(service.calls(), 2, 'another credential is another entry')
  time.advance(30_001)
  service.setMode('deny401')
  t.equal(await call('alice'), 401, 'expired entry: the service decides again')
  t.equal(await call('alice'), 401)
  t.equal(service.calls(), 4, 'denials are not cached')
})

t.test('concurrent requests with one credential share one call to the service', async (t) => {
  const service = await authService(t)
  const { app } = await buildApp(t, forwardOptions(service.url))
  const results = await Promise.all(Array.from({ length: 10 }, async () => await app.inject({ url: '/forward', headers: { cookie: 'session=alice' } })))
  t.same(new Set(results.map((r) => r.statusCode)), new Set([200]))
  t.ok(service.calls() < 10, `calls: ${service.calls()}`)
})

t.test('without a cache, concurrent requests for other URIs never share a decision', async (t) => {
  const service = await authService(t)
  service.setMode('slow-by-uri')
  const { app } = await buildApp(t, forwardOptions(service.url, { timeout: '2s' }))
  const headers = { cookie: 'session=alice' }
  const [open, secret, openAgain] = await Promise.all([
    app.inject({ url: '/forward?doc=open', headers }),
    app.inject({ url: '/forward?doc=secret', headers }),
    app.inject({ url: '/forward?doc=open', headers })
  ])
  t.equal(open.statusCode, 200)
  t.equal(secret.statusCode, 403, 'the service was asked about the secret URI itself')
  t.equal(openAgain.statusCode, 200)
  t.equal(service.calls(), 2, 'the two identical questions shared one call')
})

t.test('a bearer credential outside the JWT syntax is forward auth\'s to judge, not refused unasked', async (t) => {
  for (const jwt of [undefined, { secret: SECRET, issuer: ISSUER, audience: AUDIENCE }]) {
    const service = await authService(t)
    const { app } = await buildApp(t, { ...forwardOptions(service.url), ...(jwt === undefined ? {} : { jwt }) })
    const label = jwt === undefined ? 'forward only' : 'jwt and forward'
    const res = await app.inject({ url: '/forward', headers: { authorization: 'Bearer abc:def' } })
    t.equal(res.statusCode, 200, label)
    t.equal(service.calls(), 1, `${label}: the service was asked`)
    t.equal(service.seen[0]?.authorization, 'Bearer abc:def', `${label}: with the header as sent`)
  }
})

t.test('client copies of the service\'s identity headers are removed, even when no identity header of the gateway has their name', async (t) => {
  const service = await authService(t)
  const { app } = await buildApp(t, { ...forwardOptions(service.url), identityHeaders: { 'x-sub': 'sub' } })
  const spoofed = { 'x-user-id': 'mallory', 'x.user.roles': 'admin' }
  for (const url of ['/public', '/forward']) {
    const res = await app.inject({ url, headers: { ...spoofed, cookie: 'session=alice' } })
    t.equal(res.statusCode, 200, url)
    const seen = res.json().headers as Record<string, unknown>
    t.equal(seen['x-user-id'], undefined, `${url}: x-user-id removed`)
    t.equal(seen['x.user.roles'], undefined, `${url}: its alias x.user.roles removed`)
  }
  const res = await app.inject({ url: '/forward', headers: { cookie: 'session=alice' } })
  t.equal(res.json().headers['x-sub'], 'alice', 'the gateway\'s own identity header is still set')
})

t.test('with jwt and forward, a bearer JWT goes to jwt, a cookie to forward, and both must name one principal', async (t) => {
  const service = await authService(t)
  const options: AuthOptions = { ...forwardOptions(service.url), jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } }
  const { app } = await buildApp(t, options)
  const alice = signHmac(SECRET, claims('alice'))
  t.equal((await app.inject({ url: '/forward', headers: bearer(alice) })).statusCode, 200)
  t.equal(service.calls(), 0, 'a JWT alone does not call the service')
  t.equal((await app.inject({ url: '/forward', headers: { cookie: 'session=alice' } })).statusCode, 200)
  t.equal((await app.inject({ url: '/forward', headers: { ...bearer(alice), cookie: 'session=alice' } })).statusCode, 200)
  const res = await app.inject({ url: '/forward', headers: { ...bearer(alice), cookie: 'session=mallory' } })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOLLGATE_AUTH_CONFLICTING_CREDENTIALS')
})
