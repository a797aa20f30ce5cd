import t from 'tap'
import { gateway, listen, rawRequest, upstream } from './servers.js'

/**
 * A templated route (/api/users/:id/profile rewritten to /internal/users/:id/profile) next
 * to /api/admin. A captured param must stay inside its own segment of the upstream path:
 * either the request is refused (400/404) and no upstream sees it, or the users upstream
 * gets exactly `expected` (the param percent-encoded, nothing injected) and the admin
 * upstream nothing. The class of bug of @fastify/http-proxy's advisory on encoded route params.
 */
export function templateInjection (name: string, path: string, expected: string | null): void {
  t.test(`${name} stays inside its path param (${path})`, async (t) => {
    const users = await upstream(t)
    const admin = await upstream(t)
    const app = await gateway(t, {
      upstreams: { users: { targets: [users.url] }, admin: { targets: [admin.url] } },
      routes: [
        { prefix: '/api/users', upstream: 'users', path: '/:id/profile', rewrite: '/internal/users/:id/profile' },
        { prefix: '/api/admin', upstream: 'admin', rewritePrefix: '/admin' }
      ]
    })
    const base = await listen(app)
    const { status } = await rawRequest(base, `GET ${path} HTTP/1.1\r\nhost: gateway.test`)
    t.equal(admin.hits, 0, 'the admin upstream is never contacted')
    if (expected === null) {
      t.ok(status === 400 || status === 404, `refused with 400 or 404, got ${status}`)
      t.equal(users.hits, 0, 'nor is the users upstream')
    } else {
      t.equal(status, 200)
      t.equal(users.hits, 1)
      t.equal(users.seen[0]!.url, expected, 'the param arrives percent-encoded, in its own segment')
    }
  })
}
