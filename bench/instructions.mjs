/* global process, console */
// Instructions per request: a configuration's server under valgrind's callgrind, a fixed
// number of requests after a fixed warm-up, and the user-space instructions it executed in
// between. Unlike req/s on a shared VM, the count (V8's compiler excluded) repeated within 0.2% from run to run here,
// so a change worth 1-2% can be told apart from noise in two runs. See README.md.
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { commandLine } from './lib/cli.mjs'
import { BASELINE, CONFIGS, REQUEST_PATH } from './lib/configs.mjs'
import { benchCredentials } from './lib/credentials.mjs'
import { forkNode, onPath, stopChild, waitForMessage } from './lib/proc.mjs'
import { connectRedis, REDIS_URL, removeKeys } from './lib/redis.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const USAGE = `usage: pnpm --filter @tollgate/bench run instructions [-- options]
  --only a,b        configurations (default tollgate-proxy,tollgate-full; Redis ones use 127.0.0.1:6379);
                    with fastify-http-proxy among them, each is also given as a ratio to it
  --against DIR     also count the same configurations built from DIR (a checkout, installed and built)
  --warmup N        requests before counting starts    (default 10000)
  --requests N      requests counted                    (default 10000)
  --connections N   concurrent keep-alive connections   (default 20)
  --repeat N        runs per configuration and tree     (default 1)
  --keep DIR        keep each run's callgrind output in DIR, with V8's perf map
                    (node --perf-basic-prof) to name the JIT's functions; see README.md
Needs valgrind (Debian: apt-get install valgrind). Each run takes about a minute.`

const options = commandLine({
  only: { type: 'string', default: 'tollgate-proxy,tollgate-full' },
  against: { type: 'string' },
  warmup: { type: 'string', default: '10000' },
  requests: { type: 'string', default: '10000' },
  connections: { type: 'string', default: '20' },
  repeat: { type: 'string', default: '1' },
  keep: { type: 'string' }
}, USAGE)
function count (name, min, max) {
  const value = Number(options[name])
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`--${name}: "${options[name]}" is not a whole number from ${min} to ${max}`)
    process.exit(2)
  }
  return value
}
const warmup = count('warmup', 0, 1_000_000)
const requests = count('requests', 100, 1_000_000)
const connections = count('connections', 1, 500)
const repeat = count('repeat', 1, 20)
const valgrind = onPath('valgrind')
const control = onPath('callgrind_control')
if (valgrind === null || control === null) {
  console.error('valgrind (with callgrind_control) is not on PATH; on Debian: apt-get install valgrind')
  process.exit(2)
}
const names = options.only.split(',').map((name) => name.trim()).filter(Boolean)
for (const name of names) {
  const config = CONFIGS.find((candidate) => candidate.name === name)
  if (config === undefined || config.kind !== 'node' || (config.needs !== undefined && config.needs !== 'redis') || config.request !== undefined) {
    console.error(`--only: "${name}" is not a Node configuration with the plain GET (see pnpm bench -- --list)`)
    process.exit(2)
  }
}
const trees = [{ label: 'this tree', bench: here }]
if (options.against !== undefined) trees.push({ label: resolve(options.against), bench: join(resolve(options.against), 'bench') })

const { jwks, token, publicKeyPem } = benchCredentials()
const plan = { enabled: false } // nothing pinned: instructions do not depend on the core
const upstream = forkNode(plan, null, join(here, 'lib/upstream.mjs'), { env: { BENCH_JWKS: jwks } })
const upstreamInfo = await waitForMessage(upstream, (message) => message?.type === 'ready', 10_000, 'upstream')
const workDir = mkdtempSync(join(tmpdir(), 'tollgate-instructions-'))
const keepDir = options.keep === undefined ? null : resolve(options.keep)
if (keepDir !== null) mkdirSync(keepDir, { recursive: true })

/** Sends `total` GETs over `connections` keep-alive connections; resolves with the number not answered 200. */
async function load (port, headers, total) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  let left = total
  let failed = 0
  const one = () => new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: '127.0.0.1', port, path: REQUEST_PATH, headers, agent, timeout: 60_000 }, (response) => {
      if (response.statusCode !== 200) failed++
      response.resume()
      response.on('end', resolve)
    })
    outgoing.on('timeout', () => { outgoing.destroy(new Error('no answer within 60 s')) })
    outgoing.on('error', reject)
    outgoing.end()
  })
  await Promise.all(Array.from({ length: connections }, async () => {
    while (left > 0) {
      left--
      await one()
    }
  }))
  agent.destroy()
  return failed
}

/** Total and V8-compiler instructions of a callgrind output file. */
function instructionsOf (file) {
  const text = execFileSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  let total = 0
  let compiler = 0
  for (const line of text.split('\n')) {
    const match = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$/.exec(line)
    if (match === null) continue
    const value = Number(match[1].replaceAll(',', ''))
    if (match[2].includes('PROGRAM TOTALS')) total = value
    else if (/v8::internal::(compiler|maglev|baseline)::/.test(match[2])) compiler += value
  }
  return { total, compiler }
}

async function measure (config, tree, run) {
  const out = join(workDir, `${config.name}-${trees.indexOf(tree)}-${run}`)
  // A fresh key prefix per run, removed afterwards (never a FLUSHALL: the Redis may be shared).
  const redisPrefix = `tollgate-instructions:${process.pid}:${config.name}:${trees.indexOf(tree)}:${run}:`
  const settings = { name: config.name, upstream: `http://127.0.0.1:${upstreamInfo.port}`, jwksUrl: `http://127.0.0.1:${upstreamInfo.jwksPort}/.well-known/jwks.json`, publicKeyPem, redisUrl: REDIS_URL, redisPrefix, redisCommandTimeout: '30s' }
  const server = spawn(valgrind, [
    '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${out}`,
    // One thread: V8's background compiler and GC threads would add work that varies with timing.
    process.execPath, '--single-threaded', ...(keepDir === null ? [] : ['--perf-basic-prof']), join(tree.bench, 'lib/server.mjs')
  ], { stdio: ['ignore', openSync(`${out}.log`, 'w'), 'ignore', 'ipc'], env: { ...process.env, BENCH_SERVER: JSON.stringify(settings) } })
  try {
    const { port } = await waitForMessage(server, (message) => message?.type === 'ready', 300_000, `${config.name} under valgrind`)
    const headers = config.auth ? { authorization: `Bearer ${token}` } : {}
    let failed = await load(port, headers, warmup)
    execFileSync(control, ['--instr=on', String(server.pid)], { stdio: 'ignore' })
    failed += await load(port, headers, requests)
    execFileSync(control, ['--instr=off', String(server.pid)], { stdio: 'ignore' })
    execFileSync(control, ['--dump', String(server.pid)], { stdio: 'ignore' })
    if (failed > 0) throw new Error(`${failed} request(s) not answered 200`)
    const dumps = readdirSync(workDir).filter((file) => join(workDir, file).startsWith(`${out}.`) && !file.endsWith('.log'))
    let best = { total: 0, compiler: 0, file: null }
    for (const file of dumps) {
      const counted = instructionsOf(join(workDir, file))
      if (counted.total > best.total) best = { ...counted, file }
    }
    if (keepDir !== null) {
      const kept = `${config.name}-${trees.indexOf(tree)}-${run}`
      copyFileSync(join(workDir, best.file), join(keepDir, `${kept}.callgrind`))
      // V8 appends to /tmp/perf-<pid>.map as it compiles; valgrind runs node under its own pid.
      const map = `/tmp/perf-${server.pid}.map`
      if (existsSync(map)) renameSync(map, join(keepDir, `${kept}.perf-map`))
      console.log(`kept ${join(keepDir, kept)}.callgrind`)
    }
    return { total: best.total / requests, withoutCompiler: (best.total - best.compiler) / requests }
  } finally {
    server.kill('SIGKILL')
    if (config.needs === 'redis') {
      const client = await connectRedis()
      try {
        await removeKeys(client, redisPrefix)
      } finally {
        client.disconnect()
      }
    }
  }
}

console.log(`callgrind: ${warmup} requests of warm-up, then ${requests} counted over ${connections} connections, ${repeat} run(s) each`)
const rows = []
try {
  for (const name of names) {
    const config = CONFIGS.find((candidate) => candidate.name === name)
    for (let run = 0; run < repeat; run++) {
      for (const tree of trees) {
        const result = await measure(config, tree, run)
        rows.push({ name, tree: tree.label, ...result })
        console.log(`${name.padEnd(16)} ${tree.label.padEnd(28)} ${Math.round(result.total).toLocaleString('en-US').padStart(9)} instructions/request, ${Math.round(result.withoutCompiler).toLocaleString('en-US').padStart(9)} without V8's compiler`)
      }
    }
  }
} finally {
  await stopChild(upstream)
  rmSync(workDir, { recursive: true, force: true })
}
const median = (name, label) => {
  const values = rows.filter((row) => row.name === name && row.tree === label).map((row) => row.withoutCompiler).sort((a, b) => a - b)
  return values[Math.floor(values.length / 2)]
}
if (names.includes(BASELINE)) {
  // Instructions per request, inverted: how many requests each does for the baseline's work.
  // It leaves out the kernel (a third of the CPU time here) and the upstream on the same core.
  for (const name of names.filter((other) => other !== BASELINE)) {
    const ratio = median(BASELINE, trees[0].label) / median(name, trees[0].label)
    console.log(`${name}: ${ratio.toFixed(2)}x ${BASELINE} by instructions per request (this tree; higher is cheaper)`)
  }
}
if (trees.length === 2) {
  for (const name of names) {
    const change = median(name, trees[0].label) / median(name, trees[1].label) - 1
    console.log(`${name}: this tree ${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}% instructions/request (without the compiler) against ${trees[1].label}`)
  }
}
console.log('note: under valgrind OpenSSL runs without the CPU\'s SHA extensions, so hashing counts several times what it costs natively')
