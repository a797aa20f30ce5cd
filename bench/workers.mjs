/* global process, console, fetch, AbortSignal */
// How `server.workers` scales: the gateway (proxy only, as `tollgate start` runs it) with
// 1 and then 2 workers, in alternating rounds, under the same load. Nothing is pinned: the
// workers, the upstream and the load generator share every core, as they would on a small
// host. Output: a table, and bench/results/workers-latest.{json,md}.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DIRECT_PATH, REQUEST_PATH } from './lib/configs.mjs'
import { autocannonLoad, forkNode, freePort, sleep, stopChild, waitForMessage } from './lib/proc.mjs'
import { median } from './lib/report.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const CLI = join(here, '../packages/gateway/dist/cli.js')
const NO_PIN = { enabled: false }
const WORKERS = [1, 2]
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const duration = Number(process.env.BENCH_DURATION ?? 6)
const warmup = Number(process.env.BENCH_WARMUP ?? 2)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 100)

const workDir = mkdtempSync(join(tmpdir(), 'tollgate-workers-'))
const children = new Set()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

const upstream = forkNode(NO_PIN, null, join(here, 'lib/upstream.mjs'))
children.add(upstream)
const { port: upstreamPort } = await waitForMessage(upstream, (message) => message?.type === 'ready', 10_000, 'upstream')
const expected = await (await fetch(`http://127.0.0.1:${upstreamPort}${DIRECT_PATH}`)).text()

async function startGateway (workers) {
  const port = await freePort()
  const file = join(workDir, `tollgate-${workers}.json`)
  writeFileSync(file, JSON.stringify({
    version: 1,
    server: { host: '127.0.0.1', port, workers, logLevel: 'warn', securityHeaders: false, docs: false },
    upstreams: { bench: { targets: [`http://127.0.0.1:${upstreamPort}`] } },
    routes: [{ prefix: '/api', upstream: 'bench', rewritePrefix: '', auth: false }]
  }))
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } })
  children.add(child)
  const url = `http://127.0.0.1:${port}`
  // Ready when every worker has had the chance to take connections: /readyz answers 200 a few times in a row.
  let ready = 0
  for (let attempt = 0; attempt < 200 && ready < 5; attempt++) {
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })
      await response.arrayBuffer()
      ready = response.status === 200 ? ready + 1 : 0
    } catch {
      ready = 0
    }
    await sleep(100)
  }
  if (ready < 5) throw new Error(`the gateway with ${workers} worker(s) did not become ready`)
  const body = await (await fetch(`${url}${REQUEST_PATH}`)).text()
  if (body !== expected) throw new Error(`the gateway with ${workers} worker(s) answered ${body.slice(0, 100)}`)
  return { url, stop: async () => { await stopChild(child, 10_000); children.delete(child) } }
}

async function load (url) {
  const { measure } = await autocannonLoad(NO_PIN, null, { url: `${url}${REQUEST_PATH}`, connections, warmup, duration }, { track: (child) => { children.add(child); return child } })
  if (measure.non2xx > 0 || measure.errors > 0 || measure.timeouts > 0) throw new Error(`failed requests: ${JSON.stringify(measure)}`)
  return measure
}

const runs = []
try {
  for (let round = 1; round <= rounds; round++) {
    for (const workers of round % 2 === 1 ? WORKERS : [...WORKERS].reverse()) {
      const gateway = await startGateway(workers)
      try {
        const measure = await load(gateway.url)
        runs.push({ workers, round, rps: measure.rps, p99: measure.p99 })
        console.log(`[round ${round}/${rounds}] ${workers} worker(s): ${Math.round(measure.rps)} req/s, p99 ${measure.p99.toFixed(2)} ms`)
      } finally {
        await gateway.stop()
      }
    }
  }
} finally {
  await stopChild(upstream)
  rmSync(workDir, { recursive: true, force: true })
}

const rows = WORKERS.map((workers) => {
  const mine = runs.filter((run) => run.workers === workers)
  return { workers, rps: median(mine.map((run) => run.rps)), p99: median(mine.map((run) => run.p99)) }
})
const one = rows[0].rps
const lines = [
  `# server.workers scaling, ${new Date().toISOString()}`,
  '',
  `- command: \`pnpm --filter @tollgate/bench run workers\`; ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
  `- the gateway (proxy only, \`tollgate start\`), its upstream and autocannon (${connections} connections, ${warmup} s warm-up + ${duration} s) share every core, nothing pinned; medians of ${rounds} rounds, 1 and 2 workers alternating`,
  '',
  '| workers | req/s | x 1 worker | p99 ms |',
  '| ---: | ---: | ---: | ---: |',
  ...rows.map((row) => `| ${row.workers} | ${Math.round(row.rps).toLocaleString('en-US')} | ${(row.rps / one).toFixed(2)}x | ${row.p99.toFixed(2)} |`),
  ''
]
const markdown = lines.join('\n')
console.log(`\n${markdown}`)
writeFileSync(join(here, 'results/workers-latest.md'), markdown)
writeFileSync(join(here, 'results/workers-latest.json'), `${JSON.stringify({ rows, runs }, null, 2)}\n`)
