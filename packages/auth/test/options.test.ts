import t from 'tap'
import Fastify from 'fastify'
import tollgateAuth, { errors, redactPaths, redactPathsFor, resolveOptions, type AuthOptions } from '../src/index.js'
import { makeKey, SECRET, sha256 } from './helpers/index.js'

const ec = makeKey('ec', 'e1')
const ed = makeKey('ed25519', 'd1')

t.test('defaults are applied and the result is frozen', async (t) => {
  const resolved = resolveOptions({ jwt: { secret: SECRET, audience: 'api' } })
  t.same(resolved.jwt?.algorithms, ['HS256'])
  t.equal(resolved.jwt?.rolesClaim, 'roles')
  t.equal(resolved.jwt?.jwksCooldownMs, 30_000)
  t.equal(resolved.defaultRoute, 'authenticated')
  t.equal(resolved.retryAfterSeconds, 5)
  t.same(resolved.methods, ['jwt'])
  t.ok(Object.isFrozen(resolved))
  t.same(resolveOptions({ jwt: { publicKey: ec.publicPem } }).jwt?.algorithms, ['ES256'], 'algorithms follow the key type')
  t.same(resolveOptions({ jwt: { publicKey: ed.publicPem } }).jwt?.algorithms, ['EdDSA'])
})

t.test('a weak HS secret is refused unless insecureWeakSecret, which warns', async (t) => {
  t.throws(() => resolveOptions({ jwt: { secret: 'short' } }), /jwt\.secret: must be at least 32 bytes/)
  const resolved = resolveOptions({ jwt: { secret: 'short', insecureWeakSecret: true, audience: 'a' } })
  t.ok(resolved.jwt?.weakSecret)
  t.match(resolved.warnings, [/shorter than 32 bytes/])
})

t.test('exactly one key source', async (t) => {
  t.throws(() => resolveOptions({ jwt: {} }), /jwt: set exactly one of secret, publicKey or jwksUrl/)
  t.throws(() => resolveOptions({ jwt: { secret: SECRET, jwksUrl: 'http://127.0.0.1/jwks' } }), /got secret, jwksUrl/)
})

t.test('algorithms must match the key type', async (t) => {
  t.throws(() => resolveOptions({ jwt: { secret: SECRET, algorithms: ['RS256'] } }), /RS256 cannot be used with jwt\.secret/)
  t.throws(() => resolveOptions({ jwt: { publicKey: ec.publicPem, algorithms: ['RS256'] } }), /RS256 cannot be used with this ec public key \(it supports ES256\)/)
  t.throws(() => resolveOptions({ jwt: { publicKey: ec.privatePem } }), /jwt\.publicKey: is a private key/)
  t.throws(() => resolveOptions({ jwt: { publicKey: 'not a key' } }), /jwt\.publicKey: is not a PEM public key/)
  t.throws(() => resolveOptions({ jwt: { secret: SECRET, algorithms: ['HS257'] } }), /unknown algorithm "HS257"/)
})

t.test('every problem is reported at once, each with its path', async (t) => {
  const input = {
    jwt: { secret: 'x', algorithms: ['none'], clockTolerance: 'soon' },
    apiKeys: { header: 'bad header', keys: [{ id: '', sha256: 'plain-text-key' }] },
    forward: { url: 'ftp://x', forwardHeaders: ['x-forwarded-for'], identityHeaders: {} },
    identityHeaders: { authorization: 'sub', 'x-user-id': 'sub', x_user_id: 'sub' },
    defaultRoute: 'open',
    typo: true
  } as unknown as AuthOptions
  try {
    resolveOptions(input, { path: 'auth' })
    t.fail('should throw')
  } catch (error) {
    t.ok(error instanceof errors.InvalidOptionError)
    const paths = (error as { problems: Array<{ path: string }> }).problems.map((p) => p.path)
    for (const path of [
      'auth.jwt.secret', 'auth.jwt.algorithms', 'auth.jwt.clockTolerance', 'auth.apiKeys.header', 'auth.apiKeys.keys[0].id',
      'auth.apiKeys.keys[0].sha256', 'auth.forward.url', 'auth.forward.forwardHeaders[0]', 'auth.forward.identityHeaders.id',
      'auth.identityHeaders.authorization', 'auth.identityHeaders.x_user_id', 'auth.defaultRoute', 'auth.typo'
    ]) {
      t.ok(paths.includes(path), path)
    }
    t.match((error as Error).message, /^auth\.typo: unknown key$/m)
  }
})

t.test('no method configured is an error unless every route is public by default', async (t) => {
  t.throws(() => resolveOptions({}), /configure at least one of jwt, apiKeys or forward/)
  t.same(resolveOptions({ defaultRoute: 'public', identityHeaders: { 'x-user-id': 'sub' } }).methods, [])
})

t.test('a bad option fails app.ready() with a message naming the option', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(tollgateAuth, { jwt: { secret: 'weak' } }) }, /jwt\.secret: must be at least 32 bytes/)
})

t.test('the weak-secret warning is logged once at registration through the plugin child logger', async (t) => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(tollgateAuth, { jwt: { secret: 'weak-but-allowed', insecureWeakSecret: true, audience: 'a' } })
  await app.ready()
  const warnings = lines.map((line) => JSON.parse(line) as { plugin?: string, msg: string })
  t.match(warnings, [{ plugin: '@tollgate/auth', msg: /shorter than 32 bytes/ }])
  t.notOk(lines.join('').includes('weak-but-allowed'), 'the secret itself is never logged')
})

t.test('the Authorization header and API key never reach the logs when using redactPaths', async (t) => {
  const lines: string[] = []
  const app = Fastify({
    logger: {
      level: 'info',
      redact: redactPathsFor({ apiKeys: { header: 'X-Partner-Key', keys: [] } }),
      stream: { write: (line: string) => { lines.push(line) } },
      serializers: { req: (req) => ({ method: req.method, url: req.url, headers: req.headers }) }
    }
  })
  t.teardown(() => app.close())
  await app.register(tollgateAuth, { apiKeys: { header: 'X-Partner-Key', keys: [{ id: 'p', sha256: sha256('the-real-key') }] } })
  app.get('/x', async () => 'ok')
  await app.ready()
  await app.inject({ url: '/x', headers: { authorization: 'Bearer secret-token', 'x-partner-key': 'the-real-key', cookie: 'session=s3cr3t' } })
  await app.inject({ url: '/x', headers: { 'x-partner-key': 'a-wrong-key' } })
  const all = lines.join('\n')
  t.ok(all.includes('authentication refused'), 'failures are logged')
  for (const secret of ['secret-token', 'the-real-key', 's3cr3t', 'a-wrong-key']) t.notOk(all.includes(secret), secret)
  t.ok(redactPaths.includes('req.headers["x-api-key"]'))
  t.ok(redactPathsFor({ apiKeys: { header: 'X-Partner-Key', keys: [] } }).includes('req.headers["x-partner-key"]'))
})

t.test('refusalLogLevel: debug keeps refusal lines below info; anything but info or debug is refused', async (t) => {
  t.throws(() => resolveOptions({ jwt: { secret: SECRET, audience: 'a' }, refusalLogLevel: 'warn' as never }), /refusalLogLevel: must be "info" or "debug"/)
  for (const level of ['info', 'debug'] as const) {
    const lines: Array<{ level: number, msg: string }> = []
    const app = Fastify({ logger: { level: 'debug', stream: { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } } } })
    t.teardown(() => app.close())
    await app.register(tollgateAuth, { jwt: { secret: SECRET, audience: 'a' }, refusalLogLevel: level })
    app.get('/x', async () => 'ok')
    await app.ready()
    t.equal((await app.inject({ url: '/x', headers: { authorization: 'Bearer not.a.token' } })).statusCode, 401)
    const refused = lines.find((line) => line.msg === 'authentication refused')
    t.equal(refused?.level, level === 'info' ? 30 : 20, `${level}: the refusal line's level`)
  }
})
