import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { echoUpstream, waitFor } from './helpers/upstream.js'

// The CLI as users run it: the built bin in a child process.
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const EXAMPLE = fileURLToPath(new URL('../../../docs/manifest.example.yaml', import.meta.url))

function tollgate (args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null, stdout: string, stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 30_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

function manifestFile (text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'))
  const file = join(dir, 'tollgate.yaml')
  writeFileSync(file, text)
  return file
}

const BROKEN = `
version: 1
upstreams:
  auth: { targets: [http://127.0.0.1:3001] }
  posts: { targets: [http://127.0.0.1:3002] }
  chat: { targets: [http://127.0.0.1:4000] }
routes:
  - { prefix: /a, upstream: auth, auth: false }
  - { prefix: /b, upstream: posts, auth: false, foo: 1 }
  - { prefix: /c, upstream: post, auth: false }
`

t.test('validate accepts the contract\'s example manifest', async (t) => {
  const result = tollgate(['validate', '--config', EXAMPLE])
  t.equal(result.status, 0, result.stderr)
  t.match(result.stdout, /valid \(4 routes, 3 upstreams\)/)
})

t.test('validate prints every problem as path: message and exits 1, with no stack trace', async (t) => {
  const result = tollgate(['validate', '-c', manifestFile(BROKEN)])
  t.equal(result.status, 1)
  const lines = result.stderr.trim().split('\n')
  t.match(lines[0], /^invalid manifest /, 'a heading line')
  t.same(lines.slice(1), ['routes[1].foo: unknown key'], 'schema problems first')
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace')
})

t.test('validate reports cross-field problems in the contract\'s wording', async (t) => {
  const result = tollgate(['validate', '-c', manifestFile(BROKEN.replace(', foo: 1', ''))])
  t.equal(result.status, 1)
  t.match(result.stderr, /^routes\[2\]\.upstream: unknown upstream "post" \(known: auth, posts, chat\)$/m)
})

t.test('the gateway\'s own endpoints colliding with each other are problems, not a stack trace', async (t) => {
  const endpoints = (server: string): string => `
version: 1
server: ${server}
upstreams: { a: { targets: [http://127.0.0.1:3001] } }
routes: [{ prefix: /a, upstream: a, auth: false }]
`
  const docs = tollgate(['validate', '-c', manifestFile(endpoints('{ docs: /metrics }'))])
  t.equal(docs.status, 1)
  t.match(docs.stderr, /^server\.docs: "\/metrics" collides with server\.metrics "\/metrics"$/m)
  t.notMatch(docs.stderr, /\n\s+at /, 'no stack trace')
  const nested = tollgate(['validate', '-c', manifestFile(endpoints('{ docs: /x, metrics: /x/json, health: /readyz }'))])
  t.equal(nested.status, 1)
  t.match(nested.stderr, /^server\.docs: "\/x" collides with server\.metrics "\/x\/json"$/m, 'the docs own their subpaths')
  t.match(nested.stderr, /^server\.health: "\/readyz" collides with the readiness endpoint$/m)
})

t.test('a duration longer than the longest timer Node.js can set is refused, not turned into 1 ms', async (t) => {
  const result = tollgate(['validate', '-c', manifestFile(`
version: 1
server: { shutdownGrace: 30d }
upstreams: { a: { targets: [http://127.0.0.1:3001], timeout: 25d } }
routes: [{ prefix: /a, upstream: a, auth: false }]
`)])
  t.equal(result.status, 1)
  t.match(result.stderr, /^server\.shutdownGrace: must be at most 24 days/m)
  t.match(result.stderr, /^upstreams\.a\.timeout: must be at most 24 days/m)
  t.equal(tollgate(['validate', '-c', manifestFile(`
version: 1
server: { shutdownGrace: 24d }
upstreams: { a: { targets: [http://127.0.0.1:3001] } }
routes: [{ prefix: /a, upstream: a, auth: false }]
`)]).status, 0, '24 days is still a timer')
})

t.test('routes exits 1 on every manifest validate refuses, a plugin\'s own checks included', async (t) => {
  const weakSecret = manifestFile(`
version: 1
auth: { jwt: { secret: short } }
upstreams: { a: { targets: [http://127.0.0.1:3001] } }
routes: [{ prefix: /a, upstream: a }]
`)
  const validate = tollgate(['validate', '-c', weakSecret])
  const routes = tollgate(['routes', '-c', weakSecret])
  t.equal(validate.status, 1)
  t.equal(routes.status, 1)
  t.equal(routes.stderr, validate.stderr, 'with the same problems')
  t.equal(routes.stdout, '', 'and no table')
})

t.test('TOLLGATE_CONFIG is used when no flag is given', async (t) => {
  t.equal(tollgate(['validate'], { TOLLGATE_CONFIG: EXAMPLE }).status, 0)
  const missing = tollgate(['validate'])
  t.equal(missing.status, 1)
  t.match(missing.stderr, /pass --config <file> or set TOLLGATE_CONFIG/)
})

t.test('routes prints the route table', async (t) => {
  const result = tollgate(['routes', '--config', EXAMPLE])
  t.equal(result.status, 0, result.stderr)
  const lines = result.stdout.trim().split('\n')
  t.match(lines[0], /^PREFIX\s+METHODS\s+UPSTREAM\s+TARGETS\s+AUTH\s+RATE LIMIT$/)
  t.equal(lines.length, 5)
  t.match(result.stdout, /\/api\/posts -> \/api\/posts\s+GET,POST,PUT,PATCH,DELETE\s+posts\s+http:\/\/127\.0\.0\.1:3002,http:\/\/127\.0\.0\.1:3012\s+jwt\|apiKey roles:user\|partner\s+300\/1m by user/)
  t.match(result.stdout, /\/api\/auth -> \/api\/auth\s+any\s+auth\s+\S+\s+public\s+10\/1m by ip/)
  t.match(result.stdout, /\/api\/admin -> \/admin\s+any\s+posts\s+\S+\s+jwt roles:admin perms:posts:moderate\s+100\/1m by ip \(default\)/)
  t.equal(tollgate(['routes', '-c', manifestFile(BROKEN)]).status, 1)
})

t.test('an invalid manifest never starts a gateway', async (t) => {
  const result = tollgate(['start', '-c', manifestFile(BROKEN)])
  t.equal(result.status, 1)
  t.match(result.stderr, /^routes\[1\]\.foo: unknown key$/m)
  t.notMatch(result.stderr, /\n\s+at /)
})

t.test('unknown commands and flags are refused with the usage', async (t) => {
  const result = tollgate(['launch'])
  t.equal(result.status, 1)
  t.match(result.stderr, /unknown command "launch"/)
  t.match(result.stderr, /Usage: tollgate/)
  t.equal(tollgate(['start', '--nope']).status, 1)
  t.match(tollgate(['--help']).stdout, /Usage: tollgate <command>/)
  const bare = tollgate([])
  t.equal(bare.status, 1, 'no command: a usage error')
  t.match(bare.stderr, /Usage: tollgate/, 'its usage on stderr')
  t.equal(bare.stdout, '')
  const positional = tollgate(['validate', 'tollgate.yaml'])
  t.equal(positional.status, 1)
  t.match(positional.stderr, /unexpected argument "tollgate\.yaml" \(the manifest goes after --config: tollgate validate --config tollgate\.yaml\)/)
})

t.test('start serves, and SIGTERM lets an in-flight request finish before exiting 0', async (t) => {
  const upstream = await echoUpstream({ delayMs: 800 })
  t.teardown(upstream.close)
  const file = manifestFile(`
version: 1
server: { host: 127.0.0.1, port: 0, shutdownGrace: 10s }
upstreams:
  slow: { targets: [${upstream.url}] }
routes:
  - { prefix: /slow, upstream: slow, auth: false }
`)
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`gateway did not start: ${stdout}${stderr}`)) }, 20_000)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const match = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)
      if (match !== null) { clearTimeout(timer); resolve(Number(match[1])) }
    })
  })
  const inFlight = request(`http://127.0.0.1:${port}/slow/x`)
  await waitFor(() => upstream.seen.length === 1) // the upstream has it and holds its answer back
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  child.kill('SIGTERM')
  await waitFor(() => stdout.includes('shutting down'))
  child.kill('SIGTERM') // a supervisor repeating itself: the drain goes on
  const response = await inFlight
  t.equal(response.statusCode, 200, 'the in-flight request finished, a second SIGTERM notwithstanding')
  await response.body.json()
  t.equal(await exited, 0, 'exit code 0 after a graceful shutdown')
  t.match(stdout, /already shutting down/)
  const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  t.ok(lines.length > 0, 'stdout is pino JSON lines')
})

t.test('the bound address is logged even when logLevel is above info', async (t) => {
  const file = manifestFile(`
version: 1
server: { host: 127.0.0.1, port: 0, logLevel: warn }
upstreams:
  a: { targets: [http://127.0.0.1:3001] }
routes:
  - { prefix: /a, upstream: a, auth: false }
`)
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  await waitFor(() => /"msg":"listening"/.test(stdout), 20_000)
  const line = JSON.parse(stdout.trim().split('\n').find((text) => text.includes('"listening"'))!) as { address: string }
  t.match(line.address, /^http:\/\/127\.0\.0\.1:\d+$/)
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
})

t.test('server.workers with its port taken exits 1 at once, without restarting workers', async (t) => {
  const { createServer } = await import('node:net')
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => { resolve() })))
  const port = (taken.address() as { port: number }).port
  const result = tollgate(['start', '-c', manifestFile(`
version: 1
server: { host: 127.0.0.1, port: ${port}, workers: 2 }
upstreams:
  a: { targets: [http://127.0.0.1:3001] }
routes:
  - { prefix: /a, upstream: a, auth: false }
`)])
  t.equal(result.status, 1)
  t.match(result.stderr, new RegExp(`server\\.port: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`))
  t.match(result.stdout, /before it could listen: stopping/)
  t.notMatch(result.stdout, /starting a new one/, 'no crash loop of restarts')
})

t.test('server.workers runs several processes on one port and stops them all on SIGTERM', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const file = manifestFile(`
version: 1
server: { host: 127.0.0.1, port: 0, workers: 2, shutdownGrace: 5s }
upstreams:
  echo: { targets: ["${upstream.url}"] }
routes:
  - { prefix: /api, upstream: echo, auth: false }
`)
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  // Both workers listen on the port the cluster picked.
  await waitFor(() => (stdout.match(/Server listening at http:\/\/127\.0\.0\.1:\d+/g) ?? []).length === 2, 20_000)
  const port = Number(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)![1])
  for (let i = 0; i < 20; i++) {
    const response = await request(`http://127.0.0.1:${port}/api/n${i}`)
    t.equal(response.statusCode, 200)
    await response.body.dump()
  }
  await waitFor(() => stdout.split('\n').filter((line) => line.includes('"route":"/api"')).length === 20)
  const pids = new Set(stdout.split('\n').filter((line) => line.includes('"route":"/api"')).map((line) => (JSON.parse(line) as { pid: number }).pid))
  t.equal(pids.size, 2, 'requests were served by both workers')
  t.match(stdout, /started 2 workers/)
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'the primary exits 0 once every worker has drained')
})

t.test('pnpm exec tollgate works from the repository root, as the contract says', async (t) => {
  const root = fileURLToPath(new URL('../../../', import.meta.url))
  const result = spawnSync('pnpm', ['exec', 'tollgate', 'validate', '--config', 'docs/manifest.example.yaml'], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  t.equal(result.status, 0, result.stderr)
  t.match(result.stdout, /docs\/manifest\.example\.yaml: valid/)
})

t.test('server.workers with the TLS redirect port taken exits 1 at once, without restarting workers or printing a stack', async (t) => {
  const { createServer } = await import('node:net')
  const selfsigned = (await import('selfsigned')).default
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { algorithm: 'sha256' })
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => { resolve() })))
  const port = (taken.address() as { port: number }).port
  const file = manifestFile(`
version: 1
server: { host: 127.0.0.1, port: 0, workers: 2, tls: { cert: ./gateway.crt, key: ./gateway.key, redirectHttpPort: ${port} } }
upstreams:
  a: { targets: [http://127.0.0.1:3001] }
routes:
  - { prefix: /a, upstream: a, auth: false }
`)
  writeFileSync(join(dirname(file), 'gateway.crt'), pems.cert)
  writeFileSync(join(dirname(file), 'gateway.key'), pems.private)
  const result = tollgate(['start', '-c', file])
  t.equal(result.status, 1)
  t.match(result.stderr, new RegExp(`server\\.tls\\.redirectHttpPort: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`))
  t.match(result.stdout, /before it could listen: stopping/)
  t.notMatch(result.stdout, /starting a new one/, 'no crash loop of restarts')
  t.notMatch(result.stdout + result.stderr, /\n\s+at |"stack"/, 'no stack trace, printed or logged')
})
