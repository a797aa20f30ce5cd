// Graceful shutdown as a client sees it, through the built CLI in a child process: what a
// keep-alive connection gets during the drain, what a request cut at the deadline leaves in
// the log, and a cluster stopped by Ctrl-C (SIGINT to the whole process group).
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { echoUpstream, waitFor, type EchoUpstream } from './helpers/upstream.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

interface Started { child: ChildProcess, port: number, output: () => string, exited: Promise<number | null> }

/** Starts `tollgate start` on `manifest` (in its own process group when `group`), resolved once every worker listens. */
async function start (t: Test, manifest: string, { workers = 1, group = false } = {}): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-shutdown-'))
  writeFileSync(join(dir, 'tollgate.yaml'), manifest)
  const child = spawn(process.execPath, [CLI, 'start', '--config', join(dir, 'tollgate.yaml')], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH }, detached: group })
  t.teardown(() => {
    try {
      if (group) process.kill(-child.pid!, 'SIGKILL')
      else child.kill('SIGKILL')
    } catch {
      // Already gone: every process of the group exited.
    }
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  await waitFor(() => (output.match(/Server listening at http:\/\/127\.0\.0\.1:\d+/g) ?? []).length === workers, 20_000)
  const port = Number(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1])
  return { child, port, output: () => output, exited }
}

/** A gateway with a minute of shutdown grace in front of an upstream that answers after `delayMs`. */
async function slowGateway (t: Test, delayMs: number): Promise<{ upstream: EchoUpstream, gateway: Started }> {
  const upstream = await echoUpstream({ delayMs })
  t.teardown(upstream.close)
  const gateway = await start(t, `
version: 1
server: { host: 127.0.0.1, port: 0, shutdownGrace: 60s }
upstreams: { slow: { targets: ["${upstream.url}"] } }
routes: [{ prefix: /slow, upstream: slow, auth: false }]
`)
  return { upstream, gateway }
}

const requestLines = (output: string): Array<Record<string, unknown>> =>
  output.split('\n').filter((line) => line.includes('"msg":"request completed"')).map((line) => JSON.parse(line) as Record<string, unknown>)

t.test('a request pipelined behind an answer in flight at the signal: the answer says Connection: close, and the gateway exits once it is sent', async (t) => {
  const { upstream, gateway } = await slowGateway(t, 600)
  const socket = connect(gateway.port, '127.0.0.1')
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  const closed = new Promise<void>((resolve) => socket.on('close', () => { resolve() }))
  socket.write('GET /slow/first HTTP/1.1\r\nHost: gw\r\n\r\n')
  await waitFor(() => upstream.seen.length === 1)
  gateway.child.kill('SIGTERM')
  await waitFor(() => gateway.output().includes('shutting down'))
  socket.write('GET /slow/second HTTP/1.1\r\nHost: gw\r\n\r\n')
  await closed
  const answers = received.split(/(?=HTTP\/1\.1 )/)
  t.equal(answers.length, 1, 'one answer: a client retries what it pipelined after a Connection: close (RFC 9112 9.6)')
  t.match(answers[0], /^HTTP\/1\.1 200 /)
  t.match(answers[0], /\r\nconnection: close\r\n/i, 'the answer in flight told the client the connection ends with it')
  t.equal(upstream.seen.length, 1, 'the pipelined request never ran upstream, where its answer would have been lost')
  // The grace period is a minute: the exit follows the last answer, not the deadline.
  t.equal(await gateway.exited, 0)
  t.notMatch(gateway.output(), /grace period over/)
})

t.test('an idle keep-alive connection left by an answer in flight at the signal does not hold the exit until the deadline', async (t) => {
  const { upstream, gateway } = await slowGateway(t, 400)
  const inFlight = request(`http://127.0.0.1:${gateway.port}/slow/x`) // undici keeps the connection open after the answer
  await waitFor(() => upstream.seen.length === 1)
  gateway.child.kill('SIGTERM')
  const response = await inFlight
  t.equal(response.statusCode, 200)
  await response.body.dump()
  t.equal(await gateway.exited, 0)
  t.notMatch(gateway.output(), /grace period over/, 'the idle connection was closed, not waited for')
})

t.test('an answer in flight at the signal says Connection: close, so its client sends nothing more on that connection', async (t) => {
  const { upstream, gateway } = await slowGateway(t, 500)
  const inFlight = request(`http://127.0.0.1:${gateway.port}/slow/x`)
  await waitFor(() => upstream.seen.length === 1)
  gateway.child.kill('SIGTERM')
  const response = await inFlight
  t.equal(response.statusCode, 200)
  t.equal(response.headers.connection, 'close')
  await response.body.dump()
  t.equal(await gateway.exited, 0)
})

t.test('a connection opened and never used does not hold the exit until the deadline', async (t) => {
  const { gateway } = await slowGateway(t, 0)
  const idle = connect(gateway.port, '127.0.0.1')
  const closed = new Promise<void>((resolve) => idle.on('close', () => { resolve() }))
  idle.on('error', () => {})
  await new Promise<void>((resolve) => idle.once('connect', () => { resolve() }))
  gateway.child.kill('SIGTERM')
  await closed
  t.equal(await gateway.exited, 0)
  t.notMatch(gateway.output(), /grace period over/, 'closed by the drain, not at the deadline')
})

t.test('a request cut at the grace deadline gets its one log line (499, aborted)', async (t) => {
  const upstream = await echoUpstream({ delayMs: 4000 })
  t.teardown(upstream.close)
  const gateway = await start(t, `
version: 1
server: { host: 127.0.0.1, port: 0, shutdownGrace: 500ms, logLevel: info }
upstreams: { stuck: { targets: ["${upstream.url}"], timeout: 60s } }
routes: [{ prefix: /stuck, upstream: stuck, auth: false }]
`)
  const cut = request(`http://127.0.0.1:${gateway.port}/stuck/x`).then(() => 'answered', (error: Error & { code?: string }) => error.code ?? error.message)
  await waitFor(() => upstream.seen.length === 1)
  gateway.child.kill('SIGTERM')
  t.not(await cut, 'answered', 'the client saw its connection cut')
  t.equal(await gateway.exited, 0)
  const lines = requestLines(gateway.output()).filter((line) => line.url === '/stuck/x')
  t.equal(lines.length, 1, 'one line for the cut request')
  t.match(lines[0], { statusCode: 499, aborted: true })
})

t.test('Ctrl-C (SIGINT to the process group) drains every worker instead of cutting their requests', async (t) => {
  const upstream = await echoUpstream({ delayMs: 800 })
  t.teardown(upstream.close)
  const gateway = await start(t, `
version: 1
server: { host: 127.0.0.1, port: 0, workers: 2, shutdownGrace: 20s }
upstreams: { slow: { targets: ["${upstream.url}"] } }
routes: [{ prefix: /slow, upstream: slow, auth: false }]
`, { workers: 2, group: true })
  const inFlight = Array.from({ length: 6 }, (_, i) => request(`http://127.0.0.1:${gateway.port}/slow/${i}`, { reset: true }))
  await waitFor(() => upstream.seen.length === 6)
  process.kill(-gateway.child.pid!, 'SIGINT')
  const answers = await Promise.allSettled(inFlight)
  t.same(answers.map((answer) => answer.status === 'fulfilled' ? answer.value.statusCode : (answer.reason as Error).message), [200, 200, 200, 200, 200, 200])
  for (const answer of answers) if (answer.status === 'fulfilled') await answer.value.body.dump()
  t.equal(await gateway.exited, 0)
  t.notMatch(gateway.output(), /closing the remaining connections now/, 'no worker took the one Ctrl-C as two')
})
