import t from 'tap'
import { gateway, listen, rawRequest, upstream } from './servers.js'

/**
 * Two routes, /api/posts (public side) and /api/admin (another upstream). A path that
 * starts under /api/posts but normalises elsewhere must be refused (400) or confined:
 * the admin upstream never sees it and the posts upstream never gets a path outside
 * its rewritten prefix.
 */
export function escapeForm (name: string, path: string): void {
  t.test(`${name} never reaches another route's upstream (${path})`, async (t) => {
    const posts = await upstream(t)
    const admin = await upstream(t)
    const app = await gateway(t, {
      upstreams: { posts: { targets: [posts.url] }, admin: { targets: [admin.url] } },
      routes: [
        { prefix: '/api/posts', upstream: 'posts', rewritePrefix: '/api/posts' },
        { prefix: '/api/admin', upstream: 'admin', rewritePrefix: '/admin' }
      ]
    })
    const base = await listen(app)
    const { status } = await rawRequest(base, `GET ${path} HTTP/1.1\r\nhost: gateway.test`)
    t.equal(admin.hits, 0, 'the admin upstream is never contacted')
    t.ok(status === 400 || status === 404, `refused with 400 or 404, got ${status}`)
    t.equal(posts.hits, 0, 'nor is the posts upstream, with a path that escapes')
  })
}
