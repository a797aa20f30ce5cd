import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { createGenReqId, genReqId, loggerOptions, redactPaths, redactUrl, scrubSecrets, serializers } from '../src/index.js'

t.test('redactUrl replaces sensitive query values and keeps the rest', async (t) => {
  t.equal(redactUrl('/a/b'), '/a/b')
  t.equal(redactUrl('/a?page=2'), '/a?page=2')
  t.equal(redactUrl('/a?access_token=abc&page=2&API_KEY=k&key=z&token='), '/a?access_token=[Redacted]&page=2&API_KEY=[Redacted]&key=[Redacted]&token=[Redacted]')
  t.equal(redactUrl('/a?%61ccess_token=abc'), '/a?%61ccess_token=[Redacted]', 'percent-encoded names are decoded before comparing')
  t.equal(redactUrl('/a?%zz=1&apikey=2'), '/a?%zz=1&apikey=[Redacted]', 'an undecodable name does not break it')
  t.equal(redactUrl('/a?tenant=x', ['tenant']), '/a?tenant=[Redacted]', 'extra names')
  t.equal(redactUrl('/a?flag'), '/a?flag')
  // The cheap pre-check (does the query name anything sensitive at all?) must never skip these.
  t.equal(redactUrl('/a?page=1&Access_Token=abc'), '/a?page=1&Access_Token=[Redacted]', 'mixed case')
  t.equal(redactUrl('/a?%20token%20=abc'), '/a?%20token%20=[Redacted]', 'padded with encoded spaces')
  t.equal(redactUrl('/a?+token=abc'), '/a?+token=[Redacted]', 'padded with a plus')
  t.equal(redactUrl('/a?\u212Aey=abc'), '/a?\u212Aey=[Redacted]', 'the Kelvin sign lower-cases to k')
  t.equal(redactUrl('/a?tokens=abc&keys=1'), '/a?tokens=abc&keys=1', 'a longer name holding one is not one')
  t.equal(redactUrl('/a?q=my%20password'), '/a?q=my%20password', 'a value is never taken for a name')
})

t.test('scrubSecrets removes credentials from free text', async (t) => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-bytes_here'
  t.equal(scrubSecrets('auth failed for Bearer abc.def'), 'auth failed for Bearer [Redacted]')
  t.equal(scrubSecrets(`token ${jwt} rejected`), 'token [Redacted] rejected')
  t.equal(scrubSecrets('GET /x?access_token=abc&y=1'), 'GET /x?access_token=[Redacted]&y=1')
  t.equal(scrubSecrets('header authorization: Basic dXNlcjpwYXNz'), 'header authorization: Basic [Redacted]')
  t.equal(scrubSecrets('{"password":"hunter2"}'), '{"password":"[Redacted]"}')
  t.equal(scrubSecrets('connect ECONNREFUSED 127.0.0.1:3002'), 'connect ECONNREFUSED 127.0.0.1:3002', 'ordinary text is untouched')
})

t.test('redactPaths covers the API key header in every header holder, without wildcards', async (t) => {
  const paths = redactPaths('X-Partner-Key')
  t.ok(paths.includes('req.headers["x-partner-key"]'))
  t.ok(paths.includes('headers["authorization"]'))
  t.ok(paths.includes('res.headers["set-cookie"]'))
  t.ok(paths.includes('err.headers["cookie"]'))
  t.equal(paths.filter((path) => path.startsWith('*')).length, 0)
  t.match(loggerOptions({ apiKeyHeader: 'x-partner-key' }).redact, { paths: paths.map(String), censor: '[Redacted]' })
})

t.test('serializers never dump headers and keep only plain error fields', async (t) => {
  const s = serializers()
  const req = s.req({ method: 'GET', url: '/x?token=t', ip: '10.0.0.1', host: 'gw', headers: { authorization: 'Bearer t' }, socket: { remotePort: 5 } })
  t.same(req, { method: 'GET', url: '/x?token=[Redacted]', host: 'gw', remoteAddress: '10.0.0.1', remotePort: 5 })
  t.same(s.res({ statusCode: 201 }), { statusCode: 201 })
  const error = Object.assign(new Error('failed', { cause: new Error('inner Bearer zzz') }), {
    code: 'E_X', statusCode: 502, headers: { authorization: 'Bearer zzz' }, config: { auth: 'secret' }
  })
  const out = s.err(error) as Record<string, unknown>
  t.match(out, { type: 'Error', message: 'failed', code: 'E_X', statusCode: 502, cause: { message: 'inner Bearer [Redacted]' } })
  t.notOk('headers' in out)
  t.notOk('config' in out)
  t.equal(s.err('plain Bearer zzz'), 'plain Bearer [Redacted]')
})

t.test('genReqId keeps a sane client id, else makes a UUID', async (t) => {
  const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage
  t.equal(genReqId(req({ 'x-request-id': 'abc-1' })), 'abc-1')
  t.match(genReqId(req({ 'x-request-id': 'a b' })), /^[0-9a-f-]{36}$/)
  t.match(genReqId(req({})), /^[0-9a-f-]{36}$/)
  t.not(genReqId(req({})), genReqId(req({})))
  t.equal(createGenReqId('X-Correlation-Id')(req({ 'x-correlation-id': 'corr.7' })), 'corr.7')
})
