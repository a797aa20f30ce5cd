// A pattern route's `:id` longer than the router's limit (500 characters) got the 400 meant
// for a URL whose percent-encoding does not decode: a message naming a problem the URL did
// not have. It now gets 414 saying what is too long, still logged and counted once.
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/hostile.js'

t.test('a path parameter over the limit gets 414 naming it; one at the limit reaches the route', async (t) => {
  const { base, logs } = await startGateway(t, {
    version: 1,
    // Nothing listens on port 9: the route is refused (503) after matching, never before.
    upstreams: { users: { transport: 'nest-tcp', targets: ['tcp://127.0.0.1:9'], timeout: '2s' } },
    routes: [{ prefix: '/api/users', upstream: 'users', auth: false, patterns: [{ method: 'GET', path: '/:id', pattern: 'get_user' }] }]
  })

  const tooLong = await request(`${base}/api/users/${'z'.repeat(501)}?token=SUPERSECRET`)
  const body = await tooLong.body.text()
  t.equal(tooLong.statusCode, 414)
  t.match(JSON.parse(body), { statusCode: 414, error: 'URI Too Long', message: 'a path parameter is longer than 500 characters' })
  t.notOk(body.includes('zzz') || body.includes('SUPERSECRET'), 'the URL is not echoed')
  const lines = logs.filter((line) => line.reqId === tooLong.headers['x-request-id'] && Number(line.level) >= 30)
  t.equal(lines.length, 1, 'one log line')
  t.match(lines[0], { route: 'unmatched', statusCode: 414 })

  const atLimit = await request(`${base}/api/users/${'z'.repeat(500)}`)
  await atLimit.body.dump()
  t.not(atLimit.statusCode, 414, 'a parameter of exactly 500 characters is routed')
  t.not(atLimit.statusCode, 400)
})
