import t from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import tollgateProxy, { PROTECTED_HEADERS } from '../src/index.js'
import { gateway, upstream } from './helpers/servers.js'

t.test('request header rules remove, rename, set and add, with identity and request id values', async (t) => {
  const api = await upstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', server: 'internal/1.2', 'x-powered-by': 'php', 'x-old': 'v', 'x-kept': 'k' })
    res.end(JSON.stringify(req.headers))
  })
  const app = Fastify()
  // A stand-in for @tollgate/auth: the verified identity on the request.
  await app.register(fp(async (app) => {
    app.decorateRequest('tollgateIdentity', null)
    app.addHook('onRequest', async (request) => {
      if (request.headers.authorization === 'Bearer ann') request.tollgateIdentity = { id: 'ann', method: 'jwt', roles: ['user', 'admin'], permissions: [] }
    })
  }))
  await app.register(tollgateProxy, {
    healthChecks: false,
    protectedHeaders: ['x-user-id'],
    upstreams: { api: { targets: [api.url] } },
    routes: [{
      prefix: '/api',
      upstream: 'api',
      requestHeaders: {
        remove: ['x-debug', 'Cookie'],
        rename: { 'x-legacy-tenant': 'x-tenant-id' },
        set: { 'x-tenant': 'tenant-${identity.id}', 'x-roles': '${identity.roles}', 'x-gateway': 'tollgate', 'x-trace': '${request.id}' },
        add: { 'x-multi': 'added' }
      },
      responseHeaders: {
        remove: ['server', 'x-powered-by'],
        rename: { 'x-old': 'x-new' },
        set: { 'x-request': '${request.id}' },
        add: { 'x-kept': 'more' }
      }
    }]
  })
  t.teardown(() => app.close())
  const res = await app.inject({
    url: '/api/x',
    headers: { authorization: 'Bearer ann', 'x-debug': '1', cookie: 'a=b', 'x-legacy-tenant': 't1', 'x-tenant': 'spoofed', 'x-multi': 'client', 'x-request-id': 'rid' }
  })
  t.equal(res.statusCode, 200)
  const seen = res.json() as Record<string, string>
  t.equal(seen['x-debug'], undefined, 'removed')
  t.equal(seen.cookie, undefined, 'removed, whatever the case of the rule')
  t.equal(seen['x-legacy-tenant'], undefined, 'renamed away')
  t.equal(seen['x-tenant-id'], 't1', 'renamed to')
  t.equal(seen['x-tenant'], 'tenant-ann', 'set replaces the client value, from the identity')
  t.equal(seen['x-roles'], 'user,admin', 'a list is comma-separated')
  t.equal(seen['x-gateway'], 'tollgate')
  t.equal(seen['x-trace'], seen['x-request-id'], '${request.id} is the request id sent upstream')
  t.equal(seen['x-multi'], 'client, added', 'add appends')
  t.equal(res.headers.server, undefined)
  t.equal(res.headers['x-powered-by'], undefined)
  t.equal(res.headers['x-old'], undefined)
  t.equal(res.headers['x-new'], 'v')
  t.equal(res.headers['x-request'], seen['x-request-id'])
  t.same(res.headers['x-kept'], ['k', 'more'])

  const anonymous = await app.inject({ url: '/api/x', headers: { 'x-tenant': 'spoofed' } })
  const plain = anonymous.json() as Record<string, string>
  t.equal(plain['x-tenant'], 'spoofed', 'an identity value on an anonymous request leaves the header alone')
  t.equal(plain['x-roles'], undefined)
  t.equal(plain['x-gateway'], 'tollgate')
})

t.test('protected headers cannot be set, added, removed or renamed: registration fails naming the rule', async (t) => {
  const api = await upstream(t)
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ requestHeaders: { set: { 'x-user-id': 'admin' } } }, /routes\[0\]\.requestHeaders\.set\.x-user-id: x-user-id is protected/],
    [{ requestHeaders: { set: { 'X_User.Id': 'admin' } } }, /routes\[0\]\.requestHeaders\.set\.X_User\.Id: x_user\.id is protected/],
    [{ requestHeaders: { remove: ['x-request-id'] } }, /routes\[0\]\.requestHeaders\.remove\[0\]: x-request-id is protected/],
    [{ requestHeaders: { rename: { traceparent: 'x-trace' } } }, /routes\[0\]\.requestHeaders\.rename\.traceparent: traceparent is protected/],
    [{ requestHeaders: { rename: { 'x-a': 'x-user-id' } } }, /routes\[0\]\.requestHeaders\.rename\.x-a: x-user-id is protected/],
    [{ requestHeaders: { add: { connection: 'x' } } }, /routes\[0\]\.requestHeaders\.add\.connection: connection is protected/],
    [{ requestHeaders: { set: { 'transfer-encoding': 'chunked' } } }, /transfer-encoding is protected/],
    [{ requestHeaders: { set: { host: 'evil' } } }, /host is protected/],
    [{ responseHeaders: { remove: ['x-request-id'] } }, /routes\[0\]\.responseHeaders\.remove\[0\]: x-request-id is protected/],
    [{ responseHeaders: { set: { 'content-length': '1' } } }, /content-length is protected/],
    [{ requestHeaders: { set: { 'x-a': '${identity.secret}' } } }, /routes\[0\]\.requestHeaders\.set\.x-a: unknown variable \$\{identity\.secret\}/],
    [{ requestHeaders: { set: { 'x-a': 'a\r\nb' } } }, /must not contain CR, LF or NUL/],
    [{ requestHeaders: { set: { 'bad name': 'x' } } }, /must be a header name/],
    [{ requestHeaders: { replace: {} } }, /routes\[0\]\.requestHeaders\.replace: unknown key/]
  ]
  for (const [extra, message] of cases) {
    await t.rejects(gateway(t, {
      protectedHeaders: ['x-user-id'],
      upstreams: { api: { targets: [api.url] } },
      routes: [{ prefix: '/api', upstream: 'api', ...extra } as never]
    }), { message, code: 'TOLLGATE_PROXY_INVALID_OPTION' })
  }
  t.ok(PROTECTED_HEADERS.includes('traceparent'))
  t.equal(api.hits, 0)
})

t.test('a route without header rules forwards headers exactly as before', async (t) => {
  const api = await upstream(t)
  const app = await gateway(t, { upstreams: { api: { targets: [api.url] } }, routes: [{ prefix: '/api', upstream: 'api' }] })
  const res = await app.inject({ url: '/api', headers: { 'x-debug': '1', server: 'x' } })
  t.equal(res.json().headers['x-debug'], '1')
})
