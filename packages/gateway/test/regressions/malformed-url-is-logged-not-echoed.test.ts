// A URL whose percent-encoding does not decode is refused by the router before any hook
// runs. Its 400 quoted the whole URL back, a token in the query included, and it had no
// log line and no count, unlike every other answer.
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/hostile.js'
import { echoUpstream } from '../helpers/upstream.js'

t.test('a malformed URL gets a 400 that quotes nothing, one redacted log line and a count', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base, logs } = await startGateway(t, {
    version: 1,
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [{ prefix: '/pub', upstream: 'echo', auth: false }]
  })
  const response = await request(`${base}/pub/%E0%A4%A?token=SUPERSECRET`)
  const body = await response.body.text()
  t.equal(response.statusCode, 400)
  t.match(JSON.parse(body), { statusCode: 400, error: 'Bad Request', message: /malformed URL/ })
  t.notOk(body.includes('SUPERSECRET'), 'the token is not echoed')
  t.notOk(body.includes('%E0'), 'nor the path')

  const lines = logs.filter((line) => line.reqId === response.headers['x-request-id'] && Number(line.level) >= 30)
  t.equal(lines.length, 1, 'one log line')
  t.match(lines[0], { msg: 'request completed', route: 'unmatched', method: 'GET', statusCode: 400 })
  t.notOk(JSON.stringify(logs).includes('SUPERSECRET'), 'the token is redacted from the log')

  const scrape = await request(`${base}/metrics`)
  t.match(await scrape.body.text(), /tollgate_requests_total\{route="unmatched",method="GET",status="400"\} 1/)
  t.equal(upstream.seen.length, 0)
})
