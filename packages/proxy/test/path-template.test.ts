import t from 'tap'
import { buildPath, compileRewrite } from '../src/path-template.js'
import { gateway, upstream } from './helpers/servers.js'

t.test('buildPath percent-encodes every param and refuses empty and dot-segment values', async (t) => {
  const template = compileRewrite('/internal/:a/x/:b', 'rewrite', ['a', 'b'])
  t.equal(buildPath(template, { a: '1', b: 'two' }, '/api/1/two?q=1'), '/internal/1/x/two?q=1')
  t.equal(buildPath(template, { a: '../admin', b: 'a/b?c#d' }, '/x'), '/internal/..%2Fadmin/x/a%2Fb%3Fc%23d')
  t.equal(buildPath(template, { a: 'caf\u00e9', b: '%2e' }, '/x'), '/internal/caf%C3%A9/x/%252e')
  for (const bad of ['', '.', '..']) t.equal(buildPath(template, { a: bad, b: 'x' }, '/x'), null, `${JSON.stringify(bad)} refused`)
})

t.test('a template routes prefix + path, rewrites by params, and leaves the plain prefix route alone', async (t) => {
  const users = await upstream(t)
  const app = await gateway(t, {
    upstreams: { users: { targets: [users.url] } },
    routes: [
      { prefix: '/api/users', upstream: 'users', rewritePrefix: '/v1/users' },
      { prefix: '/api/users', upstream: 'users', path: '/:id/profile', rewrite: '/internal/profiles/:id', methods: ['GET'] },
      { prefix: '/api/teams', upstream: 'users', rewritePrefix: '/v2/teams', path: '/:team/members/:member' }
    ]
  })
  t.equal((await app.inject({ url: '/api/users/42/profile?full=1' })).json().url, '/internal/profiles/42?full=1')
  t.equal((await app.inject({ url: '/api/users/42/other' })).json().url, '/v1/users/42/other', 'other paths use the prefix route')
  t.equal((await app.inject({ url: '/api/teams/a%20b/members/c' })).json().url, '/v2/teams/a%20b/members/c', 'default rewrite: rewritePrefix + path')
  t.equal((await app.inject({ url: '/api/teams/a/members' })).statusCode, 404, 'a templated route matches its template only')
  t.equal((await app.inject({ method: 'POST', url: '/api/users/42/profile' })).statusCode, 405, 'methods apply')
})

t.test('bad templates fail at registration with their option path', async (t) => {
  const users = await upstream(t)
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ rewrite: '/x/:id' }, /routes\[0\]\.rewrite: needs a path template/],
    [{ path: '/:id', rewrite: '/x/:other' }, /routes\[0\]\.rewrite: :other is not captured/],
    [{ path: 'no-slash' }, /routes\[0\]\.path: must start with "\/"/],
    [{ path: '/a/../b' }, /routes\[0\]\.path: segment "\.\." must be/],
    [{ path: '/a/*' }, /routes\[0\]\.path: segment "\*" must be/],
    [{ path: '/%2e' }, /routes\[0\]\.path: segment "%2e" must be/],
    [{ path: '/:id/:id' }, /routes\[0\]\.path: param :id appears twice/],
    [{ path: '/:id', websocket: true }, /routes\[0\]\.websocket: cannot be combined/]
  ]
  for (const [extra, message] of cases) {
    await t.rejects(gateway(t, { upstreams: { users: { targets: [users.url] } }, routes: [{ prefix: '/api', upstream: 'users', ...extra } as never] }), { message })
  }
  await t.rejects(gateway(t, {
    upstreams: { users: { targets: [users.url] } },
    routes: [{ prefix: '/api', upstream: 'users', path: '/:id' }, { prefix: '/api', upstream: 'users', path: '/:id' }]
  }), { message: /routes\[1\]\.path: duplicate of routes\[0\]/ })
})
