import t from 'tap'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadManifest, parseManifestText } from '../src/manifest/load.js'
import { ManifestError } from '../src/manifest/errors.js'

const EXAMPLE = fileURLToPath(new URL('../../../docs/manifest.example.yaml', import.meta.url))

function problemsOf (fn: () => unknown): string[] {
  try {
    fn()
  } catch (error) {
    if (error instanceof ManifestError) return [...error.problems]
    throw error
  }
  throw new Error('expected a ManifestError')
}

const minimal = (extra = ''): string => `
version: 1
upstreams:
  posts:
    targets: [http://127.0.0.1:3002]
routes:
  - prefix: /api/posts
    upstream: posts
    auth: false
${extra}`

t.test('the contract\'s example manifest loads as written', async (t) => {
  const manifest = await loadManifest(EXAMPLE, { env: {} })
  t.equal(manifest.version, 1)
  t.equal(manifest.redis?.url, 'redis://127.0.0.1:6379', '${REDIS_URL:-...} falls back to its default')
  t.equal(manifest.auth?.jwt?.jwksUrl, 'http://127.0.0.1:3001/.well-known/jwks.json')
  t.same(Object.keys(manifest.upstreams), ['auth', 'posts', 'chat'])
  t.equal(manifest.routes.length, 4)
  t.equal(manifest.routes[3]?.websocket, true)
})

t.test('environment variables are substituted, with defaults', async (t) => {
  const text = minimal().replace('http://127.0.0.1:3002', '"${POSTS_URL}"') + 'server:\n  port: ${PORT:-8080}\n  host: ${HOST:-127.0.0.1}\n'
  const manifest = parseManifestText(text, 'm.yaml', { env: { POSTS_URL: 'http://127.0.0.1:9999', PORT: '9090' } })
  t.same(manifest.upstreams.posts?.targets, ['http://127.0.0.1:9999'])
  t.equal(manifest.server?.port, 9090, 'a whole-value reference to a number becomes a number')
  t.equal(manifest.server?.host, '127.0.0.1')
})

t.test('a missing variable without default names its config path', async (t) => {
  const text = `
version: 1
auth:
  jwt:
    secret: \${JWT_SECRET}
upstreams:
  posts: { targets: [http://127.0.0.1:3002] }
routes:
  - { prefix: /api/posts, upstream: posts }
`
  t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })), ['auth.jwt.secret: environment variable JWT_SECRET is not set'])
})

t.test('a missing variable does not hide the manifest\'s other problems, nor add its own echoes', async (t) => {
  const text = `
version: 1
auth:
  jwt:
    secret: \${JWT_SECRET}
    issuer: \${ISSUER}
upstreams:
  posts: { targets: [http://127.0.0.1:3002] }
routes:
  - { prefix: /api/posts, upstream: post }
`
  t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })), [
    'auth.jwt.secret: environment variable JWT_SECRET is not set',
    'auth.jwt.issuer: environment variable ISSUER is not set',
    'routes[0].upstream: unknown upstream "post" (known: posts)'
  ], 'not "auth.jwt.secret: must be at least 32 bytes" as well')
})

t.test('a variable of digits or true/false stays a string where the manifest wants one', async (t) => {
  const text = `
version: 1
server:
  port: \${PORT}
  securityHeaders: \${HEADERS}
auth:
  jwt:
    secret: "\${JWT_SECRET}"
    issuer: \${ISSUER}
    audience: \${AUDIENCE}
upstreams:
  posts: { targets: [http://127.0.0.1:3002] }
routes:
  - { prefix: /api/posts, upstream: posts }
`
  const secret = '1234567890123456789012345678901234567890'
  const manifest = parseManifestText(text, 'm.yaml', { env: { PORT: '9090', HEADERS: 'false', JWT_SECRET: secret, ISSUER: '2024', AUDIENCE: 'true' } })
  t.equal(manifest.server?.port, 9090, 'a number where one is wanted')
  t.equal(manifest.server?.securityHeaders, false, 'a boolean where one is wanted')
  t.equal(manifest.auth?.jwt?.secret, secret, 'digits where a string is wanted')
  t.equal(manifest.auth?.jwt?.issuer, '2024')
  t.equal(manifest.auth?.jwt?.audience, 'true')
})

t.test('an empty manifest, or one of comments only, says so', async (t) => {
  for (const text of ['', '# nothing yet\n', '---\n']) {
    t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })), ['m.yaml: the manifest is empty (it needs at least version, upstreams and routes)'], JSON.stringify(text))
  }
})

t.test('unknown keys are named by path', async (t) => {
  const text = minimal().replace('    auth: false', '    auth: false\n    foo: 1') + 'server:\n  bodylimit: 1mb\n'
  t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })).sort(), ['routes[0].foo: unknown key', 'server.bodylimit: unknown key'])
})

t.test('an unknown key inside a route\'s auth object is named, not hidden behind anyOf', async (t) => {
  const text = minimal().replace('    auth: false', '    auth: { methods: [jwt], rolez: [admin] }') + 'auth:\n  jwt: { secret: "0123456789abcdef0123456789abcdef" }\n'
  t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })), ['routes[0].auth.rolez: unknown key'])
})

t.test('an unknown upstream lists the known ones', async (t) => {
  const text = `
version: 1
upstreams:
  auth: { targets: [http://127.0.0.1:3001] }
  posts: { targets: [http://127.0.0.1:3002] }
  chat: { targets: [http://127.0.0.1:4000] }
routes:
  - { prefix: /a, upstream: auth, auth: false }
  - { prefix: /b, upstream: posts, auth: false }
  - { prefix: /c, upstream: post, auth: false }
`
  t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })), ['routes[2].upstream: unknown upstream "post" (known: auth, posts, chat)'])
})

t.test('every problem is reported at once', async (t) => {
  const text = `
version: 1
server: { port: high, bodyLimit: 1 megabyte, shutdownGrace: soon }
upstreams:
  posts: { targets: [ftp://127.0.0.1:3002], balance: fastest }
routes:
  - { prefix: api/posts, upstream: posts, auth: false, methods: [GET, TRACE] }
`
  const problems = problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} }))
  t.match(problems, [
    /^server\.port: must be an integer$/,
    /^server\.bodyLimit: must be a number of bytes, or a string such as "512kb"/,
    /^server\.shutdownGrace: must be a number of milliseconds, or a string such as "250ms"/,
    /^upstreams\.posts\.balance: must be one of "round-robin", "least-connections", "random"$/,
    /^routes\[0\]\.prefix: must be a path like \/api\/posts/,
    /^routes\[0\]\.methods\[1\]: must be one of "GET"/
  ].map((re) => re))
  t.equal(problems.length, 6, problems.join('\n'))
})

t.test('target URLs must be plain http(s) origins', async (t) => {
  const text = minimal().replace('[http://127.0.0.1:3002]', '[http://127.0.0.1:3002/x, "ftp://h", "not a url", "http://u:p@h:1"]')
  t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })), [
    'upstreams.posts.targets[0]: "http://127.0.0.1:3002/x" must be an origin only (no path, query or fragment: use the route\'s rewritePrefix)',
    'upstreams.posts.targets[1]: "ftp://h" must use http or https',
    'upstreams.posts.targets[2]: "not a url" is not a URL (expected http://host:port)',
    'upstreams.posts.targets[3]: "http://u:p@h:1" must not carry credentials'
  ])
})

t.test('a protected route needs a configured method', async (t) => {
  const noAuth = minimal().replace('    auth: false\n', '')
  t.match(problemsOf(() => parseManifestText(noAuth, 'm.yaml', { env: {} })), [/^routes\[0\]\.auth: the route requires authentication but the manifest configures no method/])
  const wrongMethod = minimal().replace('    auth: false', '    auth: { methods: [jwt, apiKey] }') + 'auth:\n  jwt: { jwksUrl: "http://127.0.0.1:1/jwks" }\n'
  t.same(problemsOf(() => parseManifestText(wrongMethod, 'm.yaml', { env: {} })), ['routes[0].auth.methods[1]: "apiKey" is not configured (auth.apiKeys is missing)'])
})

t.test('jwt needs exactly one key source, and never alg none', async (t) => {
  const two = minimal() + 'auth:\n  jwt: { jwksUrl: "http://127.0.0.1:1/jwks", secret: "x", algorithms: [RS256] }\n'
  t.same(problemsOf(() => parseManifestText(two, 'm.yaml', { env: {} })), ['auth.jwt: set exactly one of jwksUrl, secret or publicKey (found jwksUrl, secret)'])
  const none = minimal() + 'auth:\n  jwt: { jwksUrl: "http://127.0.0.1:1/jwks", algorithms: [none] }\n'
  t.match(problemsOf(() => parseManifestText(none, 'm.yaml', { env: {} })), [/^auth\.jwt\.algorithms\[0\]: must be one of "HS256"/])
})

t.test('key and certificate files are checked relative to the manifest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-manifest-'))
  writeFileSync(join(dir, 'gateway.crt'), 'cert')
  const file = join(dir, 'tollgate.yaml')
  writeFileSync(file, minimal() + 'server:\n  tls: { cert: ./gateway.crt, key: ./missing.key }\nauth:\n  jwt: { publicKey: ./keys/auth.pub.pem }\n')
  const error = await loadManifest(file, { env: {} }).then(() => null, (e: unknown) => e)
  t.type(error, ManifestError)
  t.same((error as ManifestError).problems, [
    'auth.jwt.publicKey: cannot read ./keys/auth.pub.pem (ENOENT)',
    'server.tls.key: cannot read ./missing.key (ENOENT)'
  ])
})

t.test('YAML syntax errors carry file, line and column', async (t) => {
  const problems = problemsOf(() => parseManifestText('version: 1\nroutes: [\n  - a\n', 'bad.yaml', { env: {} }))
  t.match(problems[0], /^bad\.yaml:\d+:\d+: /)
  const dup = problemsOf(() => parseManifestText('version: 1\nversion: 1\n', 'dup.yaml', { env: {} }))
  t.match(dup[0], /^dup\.yaml:2:1: Map keys must be unique/)
})

t.test('prototype keys are refused', async (t) => {
  const text = minimal() + '__proto__: { polluted: true }\nserver:\n  constructor: { x: 1 }\n'
  const problems = problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} }))
  t.same(problems.sort(), ['__proto__: forbidden key', 'server.constructor: forbidden key'])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('JSON manifests with the same structure load too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-manifest-'))
  const file = join(dir, 'tollgate.json')
  writeFileSync(file, JSON.stringify({ version: 1, upstreams: { posts: { targets: ['http://127.0.0.1:3002'] } }, routes: [{ prefix: '/api/posts', upstream: 'posts', auth: false }] }))
  const manifest = await loadManifest(file)
  t.equal(manifest.routes[0]?.prefix, '/api/posts')
  copyFileSync(EXAMPLE, join(dir, 'copy.yaml'))
})

t.test('an unreadable manifest file is a problem, not a crash', async (t) => {
  const error = await loadManifest('/nonexistent/tollgate.yaml').then(() => null, (e: unknown) => e)
  t.same((error as ManifestError).problems, ['/nonexistent/tollgate.yaml: cannot read the manifest (ENOENT)'])
})

t.test('duplicate prefixes and internal path collisions are refused', async (t) => {
  const text = minimal() + '  - { prefix: /api/posts, upstream: posts, auth: false }\nserver: { metrics: /api/posts/metrics }\n'
  t.same(problemsOf(() => parseManifestText(text, 'm.yaml', { env: {} })), [
    'routes[1].prefix: "/api/posts" is already the prefix of routes[0]',
    'server.metrics: "/api/posts/metrics" collides with routes[0].prefix "/api/posts"',
    'server.metrics: "/api/posts/metrics" collides with routes[1].prefix "/api/posts"'
  ])
})

t.test('the docs copy of the example manifest and contract match the shared contract, when it is beside the checkout', async (t) => {
  const pairs = [
    ['../../../docs/manifest.example.yaml', '../../../../shared/manifest.example.yaml'],
    ['../../../docs/contract.md', '../../../../shared/CONTRACT.md']
  ] as const
  for (const [copy, shared] of pairs) {
    const sharedPath = fileURLToPath(new URL(shared, import.meta.url))
    if (!existsSync(sharedPath)) continue // a user's clone has no shared/ beside it
    t.equal(readFileSync(fileURLToPath(new URL(copy, import.meta.url)), 'utf8'), readFileSync(sharedPath, 'utf8'), `${copy} is up to date`)
  }
})

t.test('upstreams.<name>.websocket.maxMessagesPerSecond takes a non-negative integer', async (t) => {
  const withRate = (value: string): string => `
version: 1
upstreams:
  chat:
    targets: [http://127.0.0.1:3003]
    websocket: { maxMessagesPerSecond: ${value} }
routes:
  - prefix: /ws
    upstream: chat
    auth: false
    websocket: true
`
  t.same(parseManifestText(withRate('50')).upstreams.chat?.websocket, { maxMessagesPerSecond: 50 })
  t.same(parseManifestText(withRate('0')).upstreams.chat?.websocket, { maxMessagesPerSecond: 0 }, '0 turns it off')
  for (const bad of ['-1', '2.5', '"fast"']) {
    t.match(problemsOf(() => parseManifestText(withRate(bad))).join('\n'), /upstreams\.chat\.websocket\.maxMessagesPerSecond/, bad)
  }
})
