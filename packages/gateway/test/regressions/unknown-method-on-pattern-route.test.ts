// A method the router does not know (PROPFIND, PURGE) on a route of NestJS patterns got
// 404 "no route matches", where HTTP routes answer the route's 405 with its Allow.
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/hostile.js'

t.test('PROPFIND on a pattern route gets 405 with the methods its patterns map', async (t) => {
  const { base } = await startGateway(t, {
    version: 1,
    // Nothing listens on port 9: the 405 is the gateway's, before any service is asked.
    upstreams: { users: { transport: 'nest-tcp', targets: ['tcp://127.0.0.1:9'], timeout: '2s' } },
    routes: [{
      prefix: '/api/users',
      upstream: 'users',
      auth: false,
      patterns: [{ method: 'GET', path: '/:id', pattern: 'get_user' }, { method: 'POST', path: '/', event: 'user_created' }]
    }]
  })
  for (const method of ['PROPFIND', 'PURGE']) {
    const response = await request(`${base}/api/users/1`, { method })
    t.equal(response.statusCode, 405, method)
    t.equal(response.headers.allow, 'GET, HEAD, POST')
    t.match(await response.body.json(), { statusCode: 405, error: 'Method Not Allowed' })
  }
  const elsewhere = await request(`${base}/nowhere`, { method: 'PROPFIND' })
  t.equal(elsewhere.statusCode, 404, 'outside every route: 404')
  await elsewhere.body.dump()
})
