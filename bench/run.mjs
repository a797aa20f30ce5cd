/* global process, console, fetch, setInterval, clearInterval, Buffer, AbortSignal */
// Tollgate's load benchmark: one upstream, every configuration in turn in its
// own process, load from wrk (when on PATH) or autocannon in another process,
// configurations interleaved over rounds, medians and ratios to bare
// fastify + @fastify/http-proxy from the same run. See README.md.
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BASELINE, CONFIGS, CONNECTIONS, DIRECT_PATH, MICRO, REQUEST_PATH } from './lib/configs.mjs'
import { commandLine } from './lib/cli.mjs'
import { benchCredentials } from './lib/credentials.mjs'
import { ITEM_DIRECT_PATH, ITEM_PATH, ITEM_REQUEST_BODY, shapedItem } from './lib/contracts.mjs'
import { autocannonLoad, cpuSeconds, forkNode, onPath, pinningPlan, rssBytes, sleep, stopChild, waitForMessage } from './lib/proc.mjs'
import { startNginx } from './lib/nginx.mjs'
import { connectRedis, countKeys, REDIS_URL, removeKeys } from './lib/redis.mjs'
import { runWrk, wrkScript } from './lib/wrk.mjs'
import { aggregate, consoleReport, markdownReport, micro } from './lib/report.mjs'

const here = dirname(fileURLToPath(import.meta.url))

// ---------------------------------------------------------------- options
const USAGE = `usage: pnpm bench [-- options]   (or: pnpm --filter @tollgate/bench run bench -- options)
  --only a,b        run only these configurations (plus the baseline and any pair they need)
  --duration S      measured seconds per run            (env BENCH_DURATION, default 6)
  --warmup S        warm-up seconds before each run      (env BENCH_WARMUP, default 2)
  --rounds N        interleaved rounds                   (env BENCH_ROUNDS, default 3)
  --connections N   concurrent connections               (env BENCH_CONNECTIONS, default ${CONNECTIONS})
  --load TOOL       wrk | autocannon (env BENCH_LOAD; default wrk when on PATH)
  --max-seconds S   hard limit of the whole run         (env BENCH_MAX_SECONDS, default 600)
  --pair-bursts N   alternating bursts per micro pair    (env BENCH_PAIR_BURSTS, default 6)
  --pair-seconds S  measured seconds per burst           (env BENCH_PAIR_SECONDS, default 2)
  --against DIR     compare the --only configurations built from this tree with the same ones
                    from DIR (another checkout, installed and built), both loaded at once in
                    each burst (env BENCH_AGAINST): what a change buys, on a machine too noisy
                    for two separate runs to tell
  --against-mode M  together (default): both sides loaded at once; in-turn: one side after the
                    other in each burst, which also charges work a server does on other threads
                    (libuv's thread pool: file writes, DNS, crypto) (env BENCH_AGAINST_MODE)
  --list            print the configurations and exit
env: BENCH_PIN=0 disables taskset pinning; BENCH_ONLY is --only; BENCH_CPU_PROF=DIR writes a
     --cpu-prof profile of every Node server process into DIR (open in Chrome DevTools or speedscope);
     BENCH_RL_ALGORITHM (default sliding-window) is the limiter algorithm of the rate-limited configurations.`

const parsed = commandLine({
  only: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  rounds: { type: 'string' },
  connections: { type: 'string' },
  load: { type: 'string' },
  'max-seconds': { type: 'string' },
  'pair-bursts': { type: 'string' },
  'pair-seconds': { type: 'string' },
  against: { type: 'string' },
  'against-mode': { type: 'string' },
  list: { type: 'boolean' }
}, USAGE)
if (parsed.list) {
  for (const config of CONFIGS) console.log(`${config.name.padEnd(26)} ${config.group.padEnd(6)} ${config.title}`)
  process.exit(0)
}

function numberOption (flag, env, fallback, { min, max, integer }) {
  const raw = parsed[flag] ?? process.env[env]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    console.error(`--${flag} / ${env}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${raw}"`)
    process.exit(2)
  }
  return value
}

const duration = numberOption('duration', 'BENCH_DURATION', 6, { min: 1, max: 120, integer: true })
const warmup = numberOption('warmup', 'BENCH_WARMUP', 2, { min: 0, max: 60, integer: true })
const rounds = numberOption('rounds', 'BENCH_ROUNDS', 3, { min: 1, max: 20, integer: true })
const connections = numberOption('connections', 'BENCH_CONNECTIONS', CONNECTIONS, { min: 1, max: 1000, integer: true })
const maxSeconds = numberOption('max-seconds', 'BENCH_MAX_SECONDS', 600, { min: 10, max: 7200, integer: true })
const pairBursts = numberOption('pair-bursts', 'BENCH_PAIR_BURSTS', 6, { min: 1, max: 40, integer: true })
const pairSeconds = numberOption('pair-seconds', 'BENCH_PAIR_SECONDS', 2, { min: 1, max: 60, integer: true })
/** Each burst's own warm-up: the load generator's fresh connections, not the JIT (both servers are warm). */
const BURST_WARMUP = 1
const rlAlgorithm = process.env.BENCH_RL_ALGORITHM ?? 'sliding-window'
const cpuProfDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : null

const byName = new Map(CONFIGS.map((config) => [config.name, config]))
const notes = []
let selected = CONFIGS
const onlyRaw = parsed.only ?? process.env.BENCH_ONLY
const againstRaw = parsed.against ?? process.env.BENCH_AGAINST
const againstTree = againstRaw === undefined || againstRaw === '' ? null : resolve(againstRaw)
const againstMode = parsed['against-mode'] ?? process.env.BENCH_AGAINST_MODE ?? 'together'
if (againstMode !== 'together' && againstMode !== 'in-turn') {
  console.error(`--against-mode: "${againstMode}" is neither together nor in-turn`)
  process.exit(2)
}
if (onlyRaw !== undefined && onlyRaw !== '') {
  const names = onlyRaw.split(',').map((name) => name.trim()).filter(Boolean)
  const unknown = names.filter((name) => !byName.has(name))
  if (unknown.length > 0) {
    console.error(`--only: unknown configuration(s) ${unknown.join(', ')} (known: ${[...byName.keys()].join(', ')})`)
    process.exit(2)
  }
  const wanted = new Set(names)
  const added = []
  // Head to head (--against), a configuration needs neither the baseline nor its micro pair.
  for (const name of againstTree !== null ? [] : [BASELINE, ...names.flatMap((name) => byName.get(name).requires ?? [])]) {
    if (!wanted.has(name)) {
      wanted.add(name)
      added.push(name)
    }
  }
  if (added.length > 0) notes.push(`added to --only for the ratios and pairs: ${added.join(', ')}`)
  selected = CONFIGS.filter((config) => wanted.has(config.name))
}

// --against: each selected configuration, once from this tree and once from the other one.
const abPairs = []
if (againstTree !== null) {
  if (onlyRaw === undefined || onlyRaw === '') {
    console.error('--against: name the configurations to compare with --only')
    process.exit(2)
  }
  for (const file of ['bench/lib/server.mjs', 'packages/gateway/dist/index.js']) {
    if (!existsSync(join(againstTree, file))) {
      console.error(`--against ${againstTree}: ${file} is missing (a checkout of this repository, after pnpm install and pnpm run build)`)
      process.exit(2)
    }
  }
  selected = selected.filter((config) => config.kind === 'node').flatMap((config) => {
    const other = { ...config, name: `${config.name}@against`, serverName: config.name, group: 'ab', tree: join(againstTree, 'bench'), title: `${config.title}, built from ${againstTree}` }
    abPairs.push({ name: `${config.name}: this tree vs ${againstTree}`, with: config.name, without: other.name, issue: 8, concurrent: againstMode === 'together' })
    return [{ ...config, group: 'ab' }, other]
  })
  for (const config of selected) byName.set(config.name, config)
}

// ---------------------------------------------------------------- environment
const plan = pinningPlan()
const loadChoice = parsed.load ?? process.env.BENCH_LOAD
const wrk = loadChoice === 'autocannon' ? null : onPath('wrk')
if (loadChoice === 'wrk' && wrk === null) {
  console.error('--load wrk: wrk is not on PATH')
  process.exit(2)
}
const loadTool = wrk === null ? 'autocannon' : 'wrk'
if (wrk === null && loadChoice !== 'autocannon') notes.push('wrk not on PATH: load from autocannon in its own process (autocannon may saturate its core before nginx does)')
const nginx = onPath('nginx')

const children = new Set()
function track (child) {
  children.add(child)
  child.on('error', (error) => { console.error(`child process error: ${error.message}`) })
  child.once('exit', () => children.delete(child))
  return child
}
function killAll () {
  for (const child of children) child.kill('SIGKILL')
}
process.on('SIGINT', () => {
  killAll()
  process.exit(130)
})
process.on('exit', killAll)

const warned = new Set()
/** A problem that does not invalidate the figures: printed once and kept in the report's notes. */
function warn (text) {
  if (warned.has(text)) return
  warned.add(text)
  notes.push(text)
  console.log(`warning: ${text}`)
}

const workDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'))

const { jwks, token, publicKeyPem } = benchCredentials()

// Redis, only when a selected configuration needs it.
let redis = null
if (selected.some((config) => config.needs === 'redis')) {
  try {
    redis = await connectRedis()
  } catch (error) {
    notes.push(`Redis not reachable at ${REDIS_URL} (${error.message}): Redis configurations skipped`)
  }
}
if (nginx === null && selected.some((config) => config.needs === 'nginx')) notes.push('nginx not on PATH: the nginx configuration is skipped (it is never installed by the harness)')
const runnable = selected.filter((config) => (config.needs !== 'redis' || redis !== null) && (config.needs !== 'nginx' || nginx !== null))

// ---------------------------------------------------------------- upstream
const loadAtStart = loadavg()
if (loadAtStart[0] > cpus().length) {
  warn(`the machine was busy when the run started (load average ${loadAtStart.map((value) => value.toFixed(1)).join(' / ')} over 1 / 5 / 15 min on ${cpus().length} cores): other processes share the cores, so the figures are unreliable`)
}
console.log(`pinning: ${plan.reason}`)
console.log(`load: ${loadTool}${wrk !== null ? ` (${wrk})` : ''}, ${connections} connections, ${warmup} s warm-up + ${duration} s measured, ${rounds} round(s)`)
const upstream = track(forkNode(plan, plan.server, join(here, 'lib/upstream.mjs'), { env: { BENCH_JWKS: jwks } }))
const upstreamInfo = await waitForMessage(upstream, (message) => message?.type === 'ready', 10_000, 'upstream')
const upstreamUrl = `http://127.0.0.1:${upstreamInfo.port}`
const jwksUrl = `http://127.0.0.1:${upstreamInfo.jwksPort}/.well-known/jwks.json`
// What every configuration must answer, byte for byte.
const directBody = Buffer.from(await (await fetch(`${upstreamUrl}${DIRECT_PATH}`, { signal: AbortSignal.timeout(5000) })).arrayBuffer())
// The route-contract pair (issue 11): POST /api/items with a ~1 KB JSON body. A plain
// route answers the upstream's item byte for byte; a shaped route its 4 schema fields.
const ITEM_HEADERS = { 'content-type': 'application/json' }
const itemBody = selected.some((config) => config.request === 'item')
  ? Buffer.from(await (await fetch(`${upstreamUrl}${ITEM_DIRECT_PATH}`, { method: 'POST', headers: ITEM_HEADERS, body: ITEM_REQUEST_BODY, signal: AbortSignal.timeout(5000) })).arrayBuffer())
  : null

/** What the load generator sends to a configuration, and the body its first answer must have. */
function requestOf (config) {
  if (config.request === 'item') {
    return { path: ITEM_PATH, method: 'POST', body: ITEM_REQUEST_BODY.toString('utf8'), headers: ITEM_HEADERS, expected: config.contracts ? shapedItem(itemBody) : itemBody }
  }
  return { path: config.kind === 'direct' ? DIRECT_PATH : REQUEST_PATH, method: 'GET', body: undefined, headers: {}, expected: directBody }
}

async function upstreamCounts () {
  upstream.send({ type: 'counts' })
  return await waitForMessage(upstream, (message) => message?.type === 'counts', 5000, 'upstream counts')
}

const script = wrk === null ? null : wrkScript(workDir)

// ---------------------------------------------------------------- one run
async function startTarget (config, round) {
  if (config.kind === 'direct') return { port: upstreamInfo.port, path: requestOf(config).path, pid: null, stop: async () => {} }
  if (config.kind === 'nginx') {
    const { child, port } = await startNginx(nginx, plan, workDir, upstreamInfo.port)
    track(child)
    return { port, path: requestOf(config).path, pid: child.pid, stop: () => stopChild(child) }
  }
  const redisPrefix = `tollgate-bench:${process.pid}:${config.name}:${round}:`
  const logFile = join(workDir, `${config.name}-${round}.log`)
  const fd = openSync(logFile, 'w')
  const child = track(forkNode(plan, plan.server, join(config.tree ?? here, 'lib/server.mjs'), {
    stdout: fd,
    execArgv: cpuProfDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir, '--cpu-prof-name', `${config.name}-round${round}.cpuprofile`],
    env: {
      NODE_ENV: 'production',
      BENCH_SERVER: JSON.stringify({ name: config.serverName ?? config.name, upstream: upstreamUrl, jwksUrl, publicKeyPem, redisUrl: REDIS_URL, redisPrefix, rlAlgorithm })
    }
  }))
  closeSync(fd)
  let message
  try {
    message = await waitForMessage(child, (candidate) => candidate?.type === 'ready' || candidate?.type === 'error', 30_000, config.name)
  } catch (error) {
    await stopChild(child)
    throw error
  }
  if (message.type === 'error') {
    await stopChild(child)
    throw new Error(message.message)
  }
  for (const warning of message.warnings ?? []) warn(`${config.name}: ${warning}`)
  return {
    port: message.port,
    path: requestOf(config).path,
    pid: child.pid,
    logFile,
    redisPrefix,
    stop: async () => {
      await stopChild(child)
      if (config.needs === 'redis' && redis !== null) await removeKeys(redis, redisPrefix)
    }
  }
}

async function countLines (file) {
  let lines = 0
  for await (const chunk of createReadStream(file)) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
  }
  return lines
}

async function preflight (config, target, headers) {
  const url = `http://127.0.0.1:${target.port}${target.path}`
  const request = requestOf(config)
  let response
  let body
  // A few tries (bounded, 5 s) in case a store connects just after "ready"; each retry is reported.
  for (let attempt = 0; attempt < 20; attempt++) {
    response = await fetch(url, { method: request.method, headers: { ...headers, ...request.headers }, body: request.body, signal: AbortSignal.timeout(5000) })
    body = Buffer.from(await response.arrayBuffer())
    if (response.status === 200 || attempt === 19) break
    warn(`${config.name}: preflight got ${response.status} just after ready, retrying`)
    await sleep(250)
  }
  if (response.status !== 200) throw new Error(`preflight: ${response.status} ${body.toString('utf8').slice(0, 200)}`)
  if (!body.equals(request.expected)) {
    throw new Error(`preflight: body differs from the ${config.contracts ? 'shaped item' : 'upstream\'s'}: ${body.toString('utf8').slice(0, 200)}`)
  }
  if (config.contracts) {
    const invalid = await fetch(url, { method: 'POST', headers: { ...headers, ...request.headers }, body: '{"title":42}', signal: AbortSignal.timeout(5000) })
    await invalid.arrayBuffer()
    if (invalid.status !== 400) throw new Error(`preflight: an invalid body got ${invalid.status}, expected 400 (is validation on?)`)
  }
  if (config.auth) {
    const anonymous = await fetch(url, { signal: AbortSignal.timeout(5000) })
    await anonymous.arrayBuffer()
    if (anonymous.status !== 401) throw new Error(`preflight: a request without a token got ${anonymous.status}, expected 401 (is auth on?)`)
  }
  if (config.needs === 'redis' && await countKeys(redis, target.redisPrefix) === 0) {
    throw new Error(`preflight: no Redis key under ${target.redisPrefix} after a request (is the Redis store used?)`)
  }
}

function describeFailures (phase, result) {
  const problems = []
  if (result.non2xx > 0) problems.push(`${phase}: ${result.non2xx} non-2xx answers ${JSON.stringify(result.statusCodes)}`)
  if (result.errors > 0) problems.push(`${phase}: ${result.errors} connection errors`)
  if (result.timeouts > 0) problems.push(`${phase}: ${result.timeouts} timeouts`)
  if (result.ok === 0) problems.push(`${phase}: no successful request`)
  return problems
}

const headersOf = (config) => config.auth ? { authorization: `Bearer ${token}` } : {}

/**
 * One load run against a started target: warm-up, then the measured part, with the checks
 * every run gets (no failed request, everything proxied, the prefix rewritten, bodies intact).
 * Fills `run` (rps, latencies, RSS, CPU per request, problems).
 */
async function measure (config, target, run, timing, { checkUpstream = true } = {}) {
  const headers = headersOf(config)
  const before = checkUpstream ? await upstreamCounts() : null
  let cpuStart = null
  let sampler = null
  const onMeasure = () => {
    if (target.pid === null) return
    cpuStart = cpuSeconds(target.pid)
    run.rssMaxBytes = rssBytes(target.pid)
    sampler = setInterval(() => { run.rssMaxBytes = Math.max(run.rssMaxBytes, rssBytes(target.pid)) }, 250)
  }
  const url = `http://127.0.0.1:${target.port}${target.path}`
  const request = requestOf(config)
  let result
  try {
    result = wrk === null
      ? await autocannonLoad(plan, plan.load, { url, connections, ...timing, method: request.method, headers: { ...headers, ...request.headers }, body: request.body }, { onMeasure, track })
      : await runWrk(wrk, plan, { url, connections, ...timing, script, authorization: headers.authorization, method: request.method, body: request.body, contentType: request.headers['content-type'], onMeasure })
  } finally {
    if (sampler !== null) clearInterval(sampler)
  }
  const cpuEnd = target.pid === null ? null : cpuSeconds(target.pid)
  const { measure: measured } = result
  if (result.warmup !== undefined) run.problems.push(...describeFailures('warm-up', result.warmup))
  run.problems.push(...describeFailures('measured', measured))
  const answered = measured.ok + (result.warmup?.ok ?? 0)
  run.answered = answered
  if (before !== null) run.problems.push(...servedProblems(before, await upstreamCounts(), answered))
  run.rps = measured.rps
  run.p50 = measured.p50
  run.p99 = measured.p99
  run.requests = measured.requests
  if (cpuStart !== null && cpuEnd !== null && measured.ok > 0) run.cpuUsPerRequest = (cpuEnd - cpuStart) * 1e6 / measured.ok
  return answered
}

/** What the upstream saw while `answered` requests got a 2xx: every one proxied, rewritten, intact. */
function servedProblems (before, after, answered) {
  const problems = []
  if (after.served - before.served < answered) {
    problems.push(`the upstream served ${after.served - before.served} requests but ${answered} were answered 2xx: not everything was proxied`)
  }
  if (after.refused !== before.refused) problems.push(`${after.refused - before.refused} requests reached the upstream with the prefix not rewritten`)
  if (after.badBodies !== before.badBodies) problems.push(`${after.badBodies - before.badBodies} POST bodies reached the upstream altered (or with another method)`)
  return problems
}

const newRun = (config, round, extra = {}) => ({ config: config.name, round, ...extra, ok: false, rps: null, p50: null, p99: null, rssMaxBytes: null, cpuUsPerRequest: null, problems: [] })

/** A run of the main table: a fresh process, warm-up, measured load, stop. */
async function runOne (config, round) {
  const run = newRun(config, round)
  const atStart = config.auth ? await upstreamCounts() : null
  let target
  try {
    target = await startTarget(config, round)
  } catch (error) {
    run.problems.push(`start: ${error.message}`)
    return run
  }
  try {
    await preflight(config, target, headersOf(config))
    const answered = await measure(config, target, run, { warmup, duration })
    if (atStart !== null) {
      // The key comes from the JWKS once (cached); a fetch per request would be a bug worth seeing.
      run.jwksFetches = (await upstreamCounts()).jwksFetches - atStart.jwksFetches
      if (run.jwksFetches > 10) warn(`${config.name}: ${run.jwksFetches} JWKS fetches in one run (the key set should be cached)`)
    }
    await target.stop()
    target = null
    if (config.logs) {
      const lines = await countLines(join(workDir, `${config.name}-${round}.log`))
      run.logLines = lines
      if (lines < answered) run.problems.push(`${lines} log lines for ${answered} requests: info request logs are not all written`)
    }
  } catch (error) {
    run.problems.push(error.message)
  } finally {
    if (target) await target.stop()
  }
  run.ok = run.problems.length === 0
  return run
}

/**
 * A micro pair (what one feature adds): both servers started and warmed up once, then
 * loaded in alternating bursts (with, without / without, with, ...). The two sides of a
 * burst are seconds apart in the same processes, so a machine whose speed drifts over a
 * run (this one's does, by 5-35 %) slows both alike: the figure is the difference between
 * them, which sequential runs of fresh processes could not resolve below ~10 %.
 */
async function runPair (pair) {
  const sides = [byName.get(pair.with), byName.get(pair.without)]
  const targets = []
  const runs = []
  const failed = (problem) => sides.map((config) => ({ ...newRun(config, 0, { pair: pair.name }), problems: [problem] }))
  try {
    for (const config of sides) {
      try {
        targets.push(await startTarget(config, 'pair'))
      } catch (error) {
        return failed(`start: ${error.message}`)
      }
    }
    for (const [index, config] of sides.entries()) {
      await preflight(config, targets[index], headersOf(config))
      // The JIT's warm-up, once per process; each burst then only opens its connections.
      const warm = newRun(config, 0)
      await measure(config, targets[index], warm, { warmup, duration: pairSeconds })
      if (warm.problems.length > 0) return failed(`warm-up: ${warm.problems.join('; ')}`)
    }
    for (let burst = 1; burst <= pairBursts; burst++) {
      const measureSide = async (index) => {
        const run = newRun(sides[index], burst, { pair: pair.name })
        try {
          await measure(sides[index], targets[index], run, { warmup: BURST_WARMUP, duration: pairSeconds }, { checkUpstream: !pair.concurrent })
        } catch (error) {
          run.problems.push(error.message)
        }
        run.ok = run.problems.length === 0
        return run
      }
      if (pair.concurrent) {
        // Both at once, sharing the server core: the scheduler gives each the same CPU time, so
        // whatever slows the machine slows both in the same instant, and the throughput ratio
        // is the ratio of their costs per request. The upstream's counts are checked for both.
        const before = await upstreamCounts()
        const both = await Promise.all([0, 1].map(measureSide))
        const problems = servedProblems(before, await upstreamCounts(), both.reduce((sum, run) => sum + (run.answered ?? 0), 0))
        for (const run of both) {
          run.problems.push(...problems)
          run.ok = run.problems.length === 0
        }
        runs.push(...both)
      } else {
        for (const index of burst % 2 === 1 ? [0, 1] : [1, 0]) runs.push(await measureSide(index))
      }
      const [on, off] = sides.map((config) => runs.find((run) => run.config === config.name && run.round === burst))
      console.log(`[${pair.name}, burst ${burst}/${pairBursts}] ${on.ok && off.ok ? `with ${Math.round(on.rps)} req/s, without ${Math.round(off.rps)} req/s` : 'FAILED'}`)
      for (const problem of [...on.problems, ...off.problems]) console.log(`    ${problem}`)
    }
  } catch (error) {
    return failed(error.message)
  } finally {
    for (const target of targets) await target.stop()
  }
  return runs
}

// ---------------------------------------------------------------- the run
const perRunSeconds = warmup + duration + 3
// The main table's configurations run in rounds; a micro configuration runs in its pair.
const runnableNames = new Set(runnable.map((config) => config.name))
const mainConfigs = runnable.filter((config) => config.group === 'main')
const pairs = (againstTree === null ? MICRO : abPairs).filter((pair) => runnableNames.has(pair.with) && runnableNames.has(pair.without))
const perPairSeconds = 2 * (warmup + pairSeconds + 4) + pairBursts * 2 * (BURST_WARMUP + pairSeconds + 1)
const estimate = mainConfigs.length * rounds * perRunSeconds + pairs.length * perPairSeconds
console.log(`configurations: ${mainConfigs.map((config) => config.name).join(', ')}`)
if (pairs.length > 0) console.log(`micro pairs: ${pairs.map((pair) => `${pair.with} / ${pair.without}`).join(', ')}`)
console.log(`estimated time: ~${Math.ceil(estimate / 60)} min (${mainConfigs.length} x ${rounds} runs of ~${perRunSeconds} s, ${pairs.length} pairs of ${pairBursts} bursts, ~${perPairSeconds} s each); hard limit ${maxSeconds} s`)
for (const note of notes) console.log(`note: ${note}`)
if (estimate > maxSeconds) {
  console.error(`this run would take ~${estimate} s, over BENCH_MAX_SECONDS=${maxSeconds}: lower --duration/--rounds/--pair-bursts or use --only`)
  process.exit(2)
}

const startedAt = new Date()
const deadline = Date.now() + maxSeconds * 1000
const runs = []
let outOfTime = false
for (let round = 0; round < rounds && !outOfTime; round++) {
  // Interleave: every configuration once per round, starting one later each round.
  const order = mainConfigs.slice(round % mainConfigs.length).concat(mainConfigs.slice(0, round % mainConfigs.length))
  for (const config of order) {
    if (Date.now() + perRunSeconds * 1000 > deadline) {
      outOfTime = true
      break
    }
    const run = await runOne(config, round + 1)
    runs.push(run)
    const figures = run.rps === null
      ? ''
      : `${Math.round(run.rps).toString().padStart(7)} req/s  p50 ${run.p50.toFixed(2)} ms  p99 ${run.p99.toFixed(2)} ms${run.rssMaxBytes ? `  RSS ${(run.rssMaxBytes / 1048576).toFixed(0)} MB` : ''}`
    console.log(`[round ${round + 1}/${rounds}] ${config.name.padEnd(24)} ${run.ok ? 'ok    ' : 'FAILED'} ${figures}`)
    for (const problem of run.problems) console.log(`    ${problem}`)
  }
}
for (const pair of pairs) {
  if (outOfTime || Date.now() + perPairSeconds * 1000 > deadline) {
    outOfTime = true
    break
  }
  runs.push(...await runPair(pair))
}
if (outOfTime) notes.push(`stopped early: the ${maxSeconds} s budget ran out`)

await stopChild(upstream)
if (redis !== null) redis.disconnect()
rmSync(workDir, { recursive: true, force: true })

// ---------------------------------------------------------------- report
const rows = aggregate(selected, runs)
const microRows = micro(runs, pairs)
const command = [
  ...Object.entries(process.env).filter(([key]) => key.startsWith('BENCH_') && !['BENCH_LOAD', 'BENCH_SERVER'].includes(key)).map(([key, value]) => `${key}=${value}`),
  'pnpm --filter @tollgate/bench run bench',
  ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2).filter((arg) => arg !== '--')] : [])
].join(' ')
const meta = {
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  command,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform} ${process.arch}`, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
  load: { tool: loadTool, connections, warmup, duration, pairBursts, pairSeconds, burstWarmup: BURST_WARMUP, againstMode: againstTree === null ? null : againstMode },
  rounds,
  pinning: plan,
  rateLimitAlgorithm: rlAlgorithm,
  upstreamBodyBytes: directBody.length,
  itemBytes: itemBody === null ? undefined : { request: ITEM_REQUEST_BODY.length, response: itemBody.length, shaped: shapedItem(itemBody).length },
  notes
}
console.log('')
console.log(consoleReport(rows, microRows))
for (const note of notes) console.log(`note: ${note}`)

const resultsDir = join(here, 'results')
mkdirSync(resultsDir, { recursive: true })
const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
const markdown = markdownReport(meta, rows, microRows)
writeFileSync(join(resultsDir, `${stamp}.json`), `${JSON.stringify({ meta, rows, micro: microRows, runs }, null, 2)}\n`)
writeFileSync(join(resultsDir, `${stamp}.md`), markdown)
writeFileSync(join(resultsDir, 'latest.md'), markdown)
console.log(`\nwritten: bench/results/${stamp}.json, bench/results/${stamp}.md, bench/results/latest.md`)

const failed = rows.filter((row) => row.status === 'FAILED')
if (failed.length > 0 || outOfTime) {
  console.error(`\nFAILED: ${failed.map((row) => row.name).join(', ') || 'time budget'}; every problem is listed above and in the report`)
  process.exit(1)
}
