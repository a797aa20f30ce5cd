import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'

const GATEWAY = fileURLToPath(new URL('../dist/index.js', import.meta.url))

/**
 * Runs `body` in a fresh Node process after building `app`, a gateway logging to stdout:
 * a pipe whose lines are returned, or the descriptor `stdout`. `answer` is the upstream's
 * response body (a JavaScript expression over `req`).
 */
async function runGateway (body: string, { stdout, answer = `'{"path":' + JSON.stringify(req.url) + '}'` }: { stdout?: number, answer?: string } = {}): Promise<{ code: number | null, lines: Array<Record<string, unknown>>, stderr: string }> {
  const script = `
    import { createServer } from 'node:http'
    const { createGateway } = await import(${JSON.stringify(GATEWAY)})
    const upstream = createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(${answer}) })
    await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    const app = await createGateway({
      version: 1,
      server: { host: '127.0.0.1', port: 0, logLevel: 'info' },
      upstreams: { api: { targets: ['http://127.0.0.1:' + upstream.address().port] } },
      routes: [{ prefix: '/api', upstream: 'api', auth: false }]
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const base = 'http://127.0.0.1:' + app.server.address().port
    ${body}
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', stdout ?? 'pipe', 'pipe'] })
  let output = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const lines = output.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, unknown>)
  return { code, lines, stderr }
}

t.test('every request gets its whole line, in order, from concurrent traffic', async (t) => {
  const { code, lines, stderr } = await runGateway(`
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 10 }, async (_, i) => {
        const response = await fetch(base + '/api/items/' + (round * 10 + i))
        await response.arrayBuffer()
      }))
    }
    await app.close()
    upstream.close()
  `)
  t.equal(code, 0, stderr)
  const requests = lines.filter((line) => line.msg === 'request completed')
  t.equal(requests.length, 200, 'one line per request')
  t.same(new Set(requests.map((line) => line.url)).size, 200, 'each request its own line')
  t.ok(requests.every((line) => line.statusCode === 200))
  const times = lines.map((line) => line.time as number)
  t.same(times, [...times].sort((a, b) => a - b), 'lines in the order they were logged')
})

t.test('lines logged in the turn the process exits in are written', async (t) => {
  const { code, lines } = await runGateway(`
    app.log.info({ marker: 'last-words' }, 'exiting now')
    process.exit(3)
  `)
  t.equal(code, 3)
  t.ok(lines.some((line) => line.marker === 'last-words'), 'the line before process.exit()')
})

t.test('lines logged just before an uncaught exception are written', async (t) => {
  const { code, lines, stderr } = await runGateway(`
    const response = await fetch(base + '/api/before-the-crash')
    await response.arrayBuffer()
    setImmediate(() => {
      app.log.error({ marker: 'before-crash' }, 'about to fail')
      throw new Error('boom')
    })
  `)
  t.equal(code, 1)
  t.match(stderr, /boom/)
  t.ok(lines.some((line) => line.marker === 'before-crash'), 'the line of the crashing turn')
  t.ok(lines.some((line) => line.url === '/api/before-the-crash'), 'the request line of the turn before')
})

/** A fresh directory, removed after the test. */
function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-log-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

t.test('stdout that is a file or a device is written synchronously, a pipe asynchronously', async (t) => {
  const { StdoutLog, writesWithoutWaiting } = await import('../src/log-stream.js')
  const path = join(tempDir(t), 'out.log')
  const file = openSync(path, 'w')
  t.teardown(() => { closeSync(file) })
  t.equal(writesWithoutWaiting(file), true, 'a regular file')
  const log = new StdoutLog(file)
  t.equal(log.synchronous, true)
  log.write('{"n":1}\n')
  log.write('{"n":2}\n')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(readFileSync(path, 'utf8'), '{"n":1}\n{"n":2}\n', 'written by the end of the turn, in order')

  const devNull = openSync('/dev/null', 'w')
  t.teardown(() => { closeSync(devNull) })
  t.equal(writesWithoutWaiting(devNull), true, '/dev/null')
  t.equal(writesWithoutWaiting(987654), false, 'a closed descriptor')

  // A pipe: the child's stdout is one; it reports what it sees there.
  const child = spawn(process.execPath, ['--input-type=module', '-e',
    `const { writesWithoutWaiting } = await import(${JSON.stringify(fileURLToPath(new URL('../dist/log-stream.js', import.meta.url)))}); process.stderr.write(String(writesWithoutWaiting(1)))`
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let reported = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { reported += chunk })
  child.stdout.resume()
  await new Promise((resolve) => child.on('close', resolve))
  t.equal(reported, 'false', 'a pipe is written asynchronously')
})

t.test('a gateway logging to a file writes every request line, in order', async (t) => {
  const path = join(tempDir(t), 'gateway.log')
  const out = openSync(path, 'w')
  const run = runGateway(`
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 10 }, async (_, i) => { await (await fetch(base + '/api/n/' + (round * 10 + i))).arrayBuffer() }))
    }
    await app.close()
    upstream.close()
  `, { stdout: out, answer: "'{}'" })
  closeSync(out)
  const { code, stderr } = await run
  t.equal(code, 0, stderr)
  const lines = readFileSync(path, 'utf8').split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, unknown>)
  const requests = lines.filter((line) => line.msg === 'request completed')
  t.equal(requests.length, 100, 'one whole line per request')
  t.equal(new Set(requests.map((line) => line.url)).size, 100)
  const times = lines.map((line) => line.time as number)
  t.same(times, [...times].sort((a, b) => a - b), 'in the order logged')
})

t.test('a stdout that refuses writes (a full disk) costs the log lines, never the gateway', async (t) => {
  // /dev/full: every write fails with ENOSPC.
  const full = openSync('/dev/full', 'w')
  const run = runGateway(`
    const statuses = []
    for (let i = 0; i < 20; i++) {
      const response = await fetch(base + '/api/n/' + i)
      statuses.push(response.status + ':' + await response.text())
    }
    process.stderr.write('STATUSES ' + JSON.stringify(statuses) + '\\n')
    await app.close()
    upstream.close()
  `, { stdout: full, answer: `'{"ok":true}'` })
  closeSync(full)
  const { code, stderr } = await run
  t.equal(code, 0, stderr)
  const statuses = JSON.parse(/STATUSES (.*)/.exec(stderr)?.[1] ?? '[]') as string[]
  t.same(statuses, Array.from({ length: 20 }, () => '200:{"ok":true}'), 'every request proxied')
  const notices = stderr.split('\n').filter((line) => line.startsWith('tollgate: cannot write log lines to stdout (ENOSPC)'))
  t.equal(notices.length, 1, 'said once on stderr, not once per line')
})
