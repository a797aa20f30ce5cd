/* global process, console, setTimeout, clearTimeout */
// Issue 8: "1,000 idle WebSocket connections through the gateway cost under 50 MB more".
// A gateway with one WebSocket route, in its own process; an echo WebSocket upstream and
// the clients in this one. The gateway's RSS (VmRSS) and heap are sampled after a full GC
// with no tunnel open, then with every tunnel open and idle; the difference is the cost.
// Each tunnel carries one message both ways first, so every one of them is known to work.
// Bounded: BENCH_WS_CONNECTIONS (default 1000) and 120 s for the whole run.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket, WebSocketServer } from 'ws'
import { forkNode, pinningPlan, rssBytes, waitForMessage } from './lib/proc.mjs'

const here = import.meta.dirname
const count = Number(process.env.BENCH_WS_CONNECTIONS ?? 1000)
if (!Number.isInteger(count) || count < 1 || count > 10_000) {
  console.error(`BENCH_WS_CONNECTIONS: expected an integer from 1 to 10000, got "${process.env.BENCH_WS_CONNECTIONS}"`)
  process.exit(2)
}
const deadline = setTimeout(() => { console.error('websockets: over 120 s, stopping'); process.exit(1) }, 120_000)
deadline.unref()

const upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 })
upstream.on('connection', (socket) => { socket.on('message', (data) => { socket.send(data) }) })
await new Promise((resolve) => upstream.once('listening', resolve))

const plan = pinningPlan()
const gateway = forkNode(plan, plan.server, join(here, 'lib/ws-gateway.mjs'), {
  execArgv: ['--expose-gc'],
  env: { NODE_ENV: 'production', BENCH_WS_UPSTREAM: `http://127.0.0.1:${upstream.address().port}` }
})
const { port } = await waitForMessage(gateway, (m) => m?.type === 'ready', 30_000, 'ws gateway')

async function settled () {
  await sleep(500)
  const { heapUsed } = await new Promise((resolve, reject) => {
    gateway.send({ type: 'gc' })
    waitForMessage(gateway, (m) => m?.type === 'gc-done', 10_000, 'ws gateway gc').then(resolve, reject)
  })
  return { rss: rssBytes(gateway.pid), heapUsed }
}

/** Opens one tunnel and checks it carries a message both ways. */
function open (i) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws/room`)
    const timer = setTimeout(() => { socket.terminate(); reject(new Error(`connection ${i}: no echo within 10 s`)) }, 10_000)
    socket.once('open', () => { socket.send(`hello ${i}`) })
    socket.once('message', (data) => {
      clearTimeout(timer)
      if (String(data) === `hello ${i}`) resolve(socket)
      else reject(new Error(`connection ${i}: echoed ${String(data)}`))
    })
    socket.once('error', (error) => { clearTimeout(timer); reject(error) })
  })
}

// Warm-up: the first tunnels load code and fill pools that later ones reuse.
for (const socket of await Promise.all(Array.from({ length: 20 }, (_, i) => open(i)))) socket.close()
const before = await settled()
const sockets = []
for (let i = 0; i < count; i += 100) {
  sockets.push(...await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => open(i + j))))
}
await sleep(2000)
const after = await settled()
const open_ = sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length
for (const socket of sockets) socket.terminate()
gateway.send({ type: 'stop' })
await new Promise((resolve) => gateway.once('exit', resolve))
upstream.close()

const mb = (bytes) => bytes / 1024 / 1024
const result = {
  at: new Date().toISOString(),
  connections: count,
  stillOpen: open_,
  rssBeforeMB: +mb(before.rss).toFixed(1),
  rssAfterMB: +mb(after.rss).toFixed(1),
  rssAddedMB: +mb(after.rss - before.rss).toFixed(1),
  heapAddedMB: +mb(after.heapUsed - before.heapUsed).toFixed(1),
  perConnectionKB: +((after.rss - before.rss) / count / 1024).toFixed(1),
  pinning: plan.reason
}
const lines = [
  `# Idle WebSockets through the gateway, ${result.at}`,
  '',
  `- command: \`pnpm --filter @tollgate/bench run websockets\` (BENCH_WS_CONNECTIONS=${count})`,
  `- ${count} tunnels client -> gateway -> upstream, each checked with one echo, then idle for 2 s; ${open_} still open when sampled`,
  `- gateway RSS (VmRSS) after a full GC: ${result.rssBeforeMB} MB with no tunnel, ${result.rssAfterMB} MB with ${count}: **+${result.rssAddedMB} MB** (${result.perConnectionKB} KB a tunnel; heap +${result.heapAddedMB} MB); the bar is +50 MB for 1,000`,
  `- pinning: ${plan.reason}`,
  ''
]
console.log(lines.join('\n'))
const resultsDir = join(here, 'results')
mkdirSync(resultsDir, { recursive: true })
writeFileSync(join(resultsDir, 'websockets-latest.md'), lines.join('\n'))
writeFileSync(join(resultsDir, 'websockets-latest.json'), `${JSON.stringify(result, null, 2)}\n`)
if (open_ !== count) {
  console.error(`FAILED: ${count - open_} tunnels closed while idle`)
  process.exit(1)
}
process.exit(0)
