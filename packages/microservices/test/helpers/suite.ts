import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type { TollgateEventMap } from '@tollgate/common'
import type { MicroservicesOptions } from '../../src/index.js'
import { gateway, service, targetFor, TRANSPORT_OF, type Service, type TransportName } from './services.js'

/** Routes covering every behaviour, against the fixture service's patterns (prefixed by `ns`). */
export function routesFor (ns: string): MicroservicesOptions['routes'] {
  return [
    {
      prefix: '/api/users',
      upstream: 'users',
      patterns: [
        { method: 'GET', path: '/stream', pattern: `${ns}stream` },
        { method: 'GET', path: '/stream-async', pattern: `${ns}stream_async` },
        { method: 'GET', path: '/as-array', pattern: `${ns}echo`, data: 'query', array: true },
        { method: 'GET', path: '/missing/:id', pattern: `${ns}not_found` },
        { method: 'POST', path: '/conflict', pattern: `${ns}conflict` },
        { method: 'GET', path: '/boom', pattern: `${ns}boom` },
        { method: 'GET', path: '/rpc-plain', pattern: `${ns}rpc_plain` },
        { method: 'GET', path: '/server-error', pattern: `${ns}server_error` },
        { method: 'GET', path: '/nothing', pattern: `${ns}nothing` },
        { method: 'GET', path: '/whoami', pattern: `${ns}whoami` },
        { method: 'GET', path: '/no-handler', pattern: `${ns}no_such_pattern` },
        { method: 'GET', path: '/events', pattern: `${ns}events_seen` },
        { method: 'POST', path: '/echo', pattern: `${ns}echo` },
        // Keys in another order than the service declares them: NestJS sorts them.
        { method: 'POST', path: '/sum', pattern: { ns, cmd: 'sum', role: 'math' } },
        { method: 'GET', path: '/:id', pattern: `${ns}get_user` },
        { method: 'PUT', path: '/:id/envelope', pattern: `${ns}echo`, data: 'envelope' },
        { method: 'POST', path: '/', event: `${ns}user_created` }
      ]
    },
    {
      prefix: '/api/slow',
      upstream: 'slowpoke',
      patterns: [{ method: 'GET', path: '/', pattern: `${ns}slow`, data: 'query' }]
    }
  ]
}

export interface Setup {
  svc: Service
  app: FastifyInstance
  responses: Array<TollgateEventMap['upstreamResponse']>
}

export async function setup (t: Test, transport: TransportName, slowTimeout = 1000): Promise<Setup> {
  const svc = await service(t, transport)
  const target = targetFor(transport, svc)
  const app = await gateway(t, {
    upstreams: {
      users: { transport: TRANSPORT_OF[transport], targets: [target], timeout: '20s' },
      slowpoke: { transport: TRANSPORT_OF[transport], targets: [target], timeout: slowTimeout }
    },
    routes: routesFor(svc.ns)
  })
  const responses: Setup['responses'] = []
  app.tollgate.events.on('upstreamResponse', (event) => { responses.push(event) })
  return { svc, app, responses }
}

/** Retries `fn` until it returns true or `ms` pass (a restarted service takes a moment to subscribe). */
export async function eventually (fn: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

/** The behaviour every transport shares, as subtests of `t`. */
export function sharedBehaviour (t: Test, transport: TransportName): void {
  let s: Setup
  t.before(async () => { s = await setup(t, transport) })

  t.test('a message pattern answers 200 with the reply as JSON; path params and the query string are the data', async (t) => {
    const res = await s.app.inject({ url: '/api/users/7?expand=roles' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(res.json(), { id: '7', name: 'user 7', query: { id: '7', expand: 'roles' } })
    const event = s.responses.at(-1)!
    t.equal(event.upstream, 'users')
    t.equal(event.status, 200)
    t.equal(event.target, targetFor(transport, s.svc))
    t.ok(event.seconds >= 0)
  })

  t.test('an object pattern reaches the handler declared with its keys in another order', async (t) => {
    const res = await s.app.inject({ method: 'POST', url: '/api/users/sum', payload: { numbers: [1, 2, 39] } })
    t.equal(res.statusCode, 200)
    t.equal(res.json(), 42)
  })

  t.test('non-ASCII payloads, larger than a socket chunk, arrive and return intact', async (t) => {
    const payload = { text: 'héllo wörld ✓ 😀 ', long: 'é😀'.repeat(40_000), nested: { ключ: 'значение' } }
    const res = await s.app.inject({ method: 'POST', url: '/api/users/echo', payload })
    t.equal(res.statusCode, 200)
    t.same(res.json(), payload)
    const scalar = await s.app.inject({ method: 'POST', url: '/api/users/echo', payload: '"a string ✓"', headers: { 'content-type': 'application/json' } })
    t.equal(scalar.body, '"a string ✓"', 'a string reply is JSON too')
  })

  t.test('a handler returning a stream answers a JSON array of its values, synchronous or not', async (t) => {
    t.same((await s.app.inject({ url: '/api/users/stream' })).json(), [1, 2, 3])
    t.same((await s.app.inject({ url: '/api/users/stream-async' })).json(), [{ i: 0 }, { i: 1 }, { i: 2 }])
    t.same((await s.app.inject({ url: '/api/users/as-array?x=1' })).json(), [{ x: '1' }], 'array: true wraps a single value')
    const nothing = await s.app.inject({ url: '/api/users/nothing' })
    t.equal(nothing.statusCode, 204)
    t.equal(nothing.body, '')
  })

  t.test('the envelope carries params, query, body, identity and the request id', async (t) => {
    const res = await s.app.inject({ method: 'PUT', url: '/api/users/9/envelope?dry=1', payload: { name: 'Ann' }, headers: { 'x-request-id': 'ignored' } })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.same(body.params, { id: '9' })
    t.same(body.query, { dry: '1' })
    t.same(body.body, { name: 'Ann' })
    t.equal(body.identity, null)
    t.type(body.requestId, 'string')
  })

  t.test('an RpcException with a 4xx status gives that status and its message', async (t) => {
    const missing = await s.app.inject({ url: '/api/users/missing/7' })
    t.equal(missing.statusCode, 404)
    t.equal(missing.json().message, 'user 7 not found')
    t.equal(missing.json().code, 'TOLLGATE_MICROSERVICES_REJECTED')
    const conflict = await s.app.inject({ method: 'POST', url: '/api/users/conflict', payload: {} })
    t.equal(conflict.statusCode, 409)
    t.equal(conflict.json().message, 'email taken')
  })

  t.test('any other error is a 502 with a generic message: nothing of the service leaks', async (t) => {
    for (const path of ['boom', 'rpc-plain', 'server-error']) {
      const res = await s.app.inject({ url: `/api/users/${path}` })
      t.equal(res.statusCode, 502, path)
      t.equal(res.json().message, 'The upstream service failed to handle the request', path)
      t.notMatch(res.body, /10\.1\.2\.3|postgres|plain rpc|database|Internal server error/, path)
    }
    t.equal(s.responses.at(-1)!.status, 502)
  })

  t.test('a pattern without a handler is 503 with Retry-After', async (t) => {
    const res = await s.app.inject({ url: '/api/users/no-handler' })
    t.equal(res.statusCode, 503)
    t.equal(res.headers['retry-after'], '5')
    t.equal(res.json().code, 'TOLLGATE_MICROSERVICES_NO_RESPONDER')
  })

  t.test('an event answers 202 once the transport took it, and the service receives it', async (t) => {
    const res = await s.app.inject({ method: 'POST', url: '/api/users', payload: { name: 'Zoë', transport } })
    t.equal(res.statusCode, 202)
    t.equal(res.body, '')
    t.ok(await eventually(async () => {
      const seen = (await s.app.inject({ url: '/api/users/events' })).json() as unknown[]
      return seen.some((event) => (event as { name?: string }).name === 'Zoë')
    }), 'the event handler ran')
  })

  t.test('no complete reply within timeout is 504, and the late reply is dropped, not given to another request', async (t) => {
    const slow = s.app.inject({ url: '/api/slow?ms=1600&tag=first' })
    // Sent while the first waits; answered after the first timed out, before its late reply.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const second = s.app.inject({ url: '/api/slow?ms=900&tag=second' })
    const first = await slow
    t.equal(first.statusCode, 504)
    t.equal(first.json().code, 'TOLLGATE_MICROSERVICES_TIMEOUT')
    const res = await second
    // What matters: never the first call's late reply. On a loaded machine the second call
    // may itself time out or find the service busy.
    if (res.statusCode === 200) t.same(res.json(), { late: 'second' }, 'its own reply, not the first one\'s')
    else t.ok([503, 504].includes(res.statusCode), `or its own failure on a slow machine (${res.statusCode})`)
    await new Promise((resolve) => setTimeout(resolve, 600))
    const fresh = await s.app.inject({ url: '/api/slow?ms=0&tag=third' })
    t.same(fresh.json(), { late: 'third' }, 'the late reply went nowhere')
  })

  t.test('wrong method on a mapped path is 405 with Allow; other content types are 415', async (t) => {
    const res = await s.app.inject({ method: 'DELETE', url: '/api/users/7' })
    t.equal(res.statusCode, 405)
    t.equal(res.headers.allow, 'GET, HEAD')
    const text = await s.app.inject({ method: 'POST', url: '/api/users/echo', payload: 'hi', headers: { 'content-type': 'text/plain' } })
    t.equal(text.statusCode, 415)
    const bad = await s.app.inject({ method: 'POST', url: '/api/users/echo', payload: '{nope', headers: { 'content-type': 'application/json' } })
    t.equal(bad.statusCode, 400)
    t.equal((await s.app.inject({ url: '/api/users/..%2fadmin' })).statusCode, 400)
  })

  t.test('readiness passes while the service is up (Redis: while each pattern has a subscriber)', async (t) => {
    const checks = await s.app.tollgate.checkReadiness()
    if (transport === 'redis') {
      // Redis readiness also asks PUBSUB NUMSUB: the route to a pattern nobody handles shows.
      t.same(checks, [
        { name: 'upstream:users', ok: false, message: `no subscriber on "${s.svc.ns}no_such_pattern"` },
        { name: 'upstream:slowpoke', ok: true }
      ])
    } else {
      t.same(checks.map((c) => [c.name, c.ok]), [['upstream:users', true], ['upstream:slowpoke', true]])
    }
  })

  t.test('the service restarted mid-run is reached again without restarting the gateway', async (t) => {
    const before = (await s.app.inject({ url: '/api/users/whoami' })).json().pid
    await s.svc.kill()
    // A call racing the kill may see its connection lost mid-call (502); once the gateway
    // has seen the service go, every call is a 503.
    let down = await s.app.inject({ url: '/api/users/whoami' })
    for (let i = 0; i < 50 && down.statusCode === 502; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      down = await s.app.inject({ url: '/api/users/whoami' })
    }
    t.equal(down.statusCode, 503, 'no responder while it is down')
    t.equal(down.headers['retry-after'], '5')
    if (transport !== 'nats') {
      const checks = await s.app.tollgate.checkReadiness()
      t.equal(checks.find((c) => c.name === 'upstream:users')?.ok, false, 'not ready while it is down')
    }
    await s.svc.start()
    let after: number | undefined
    t.ok(await eventually(async () => {
      const res = await s.app.inject({ url: '/api/users/whoami' })
      if (res.statusCode === 200) after = res.json().pid
      return res.statusCode === 200
    }), 'answers again')
    t.not(after, before, 'from the new process')
  })
}
