import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const GATEWAY = fileURLToPath(new URL('../dist/index.js', import.meta.url))

/** Runs `body` in a fresh Node process after building `app`, a gateway logging to stdout. */
async function runGateway (body: string): Promise<{ code: number | null, lines: Array<Record<string, unknown>>, stderr: string }> {
  const script = `
    import { createServer } from 'node:http'
    const { createGateway } = await import(${JSON.stringify(GATEWAY)})
    const upstream = createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"path":' + JSON.stringify(req.url) + '}') })
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
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const lines = stdout.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, unknown>)
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
