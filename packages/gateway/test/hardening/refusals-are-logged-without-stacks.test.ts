import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/hostile.js'
import { echoUpstream } from '../helpers/upstream.js'

/*
 * A refused request (401, 403, 429, 400, ...) is an outcome, not a fault: its log line
 * names the error's code and message but carries no stack trace, which would cost a
 * flood of bad credentials about 25 us and 300 bytes of log per request. A failure of
 * the gateway's own path (an upstream that cannot be reached) keeps its stack.
 */

const SECRET = 'a-test-secret-that-is-long-enough-32+'

type LogLine = Record<string, unknown> & { err?: Record<string, unknown> }

t.test('401 and 429 are logged with code and message, without a stack; a 503 keeps its stack', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base, logs } = await startGateway(t, {
    version: 1,
    server: { docs: false },
    auth: { jwt: { secret: SECRET, algorithms: ['HS256'] } },
    upstreams: { echo: { targets: [upstream.url] }, down: { targets: ['http://127.0.0.1:9'] } },
    routes: [
      { prefix: '/api', upstream: 'echo', rateLimit: { max: 2, window: '1m' } },
      { prefix: '/down', upstream: 'down', auth: false }
    ]
  })

  // Refused credentials spend the IP's budget on the route; a 429 follows (bounded).
  const statuses: number[] = []
  for (let i = 0; i < 10 && !statuses.includes(429); i++) {
    const response = await request(`${base}/api/x`, { headers: i === 0 ? {} : { authorization: 'Bearer not.a.token' } })
    statuses.push(response.statusCode)
    await response.body.dump()
  }
  t.ok(statuses.slice(0, -1).every((status) => status === 401) && statuses.at(-1) === 429, `401s, then 429: ${statuses.join(', ')}`)
  const down = await request(`${base}/down/x`)
  await down.body.dump()
  t.ok(down.statusCode === 502 || down.statusCode === 503, `an unreachable upstream answers ${down.statusCode}`)

  const completed = (logs as LogLine[]).filter((line) => line.msg === 'request completed')
  const refused = completed.filter((line) => line.statusCode === 401 || line.statusCode === 429)
  t.equal(refused.length, statuses.length, 'one line per refused request')
  for (const line of refused) {
    t.match(line.err, { code: /^TOLLGATE_(AUTH|RATE_LIMIT)_/, message: String }, `${String(line.statusCode)}: code and message logged`)
    t.notOk(line.err !== undefined && 'stack' in line.err, `${String(line.statusCode)}: no stack trace`)
  }
  // The contract's one line per request: the auth plugin's own refusal lines are at debug.
  for (const line of refused) {
    const atInfo = (logs as LogLine[]).filter((other) => other.reqId === line.reqId && Number(other.level) >= 30)
    t.equal(atInfo.length, 1, `${String(line.statusCode)}: one line at info or above for the request`)
  }
  const failed = completed.find((line) => line.statusCode === down.statusCode)
  t.type(failed?.err?.stack, 'string', 'the unreachable upstream\'s error keeps its stack')
})
