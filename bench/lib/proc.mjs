/* global process, setTimeout, clearTimeout */
// Child processes for the harness: pinned with taskset when the machine allows,
// with an IPC channel for readiness, and always with a time limit on every wait.
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The absolute path of an executable on PATH, or null. */
export function onPath (name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

/**
 * How processes are pinned: gateway (or peer) and upstream on core 0, the load
 * generator on core 1. Needs taskset and at least two usable cores; otherwise
 * nothing is pinned and the report says so.
 */
export function pinningPlan () {
  const taskset = onPath('taskset')
  const cores = availableParallelism()
  if (process.env.BENCH_PIN === '0') return { enabled: false, taskset: null, server: null, load: null, reason: 'BENCH_PIN=0' }
  if (taskset === null) return { enabled: false, taskset: null, server: null, load: null, reason: 'taskset not found on PATH' }
  if (cores < 2) return { enabled: false, taskset, server: null, load: null, reason: `only ${cores} usable core(s)` }
  // Both cores must be in our affinity mask (a container may allow others).
  const probe = spawnSync(taskset, ['-c', '0,1', 'true'], { stdio: 'ignore', timeout: 5000 })
  if (probe.status !== 0) return { enabled: false, taskset, server: null, load: null, reason: 'taskset -c 0,1 refused (cores 0 and 1 not both allowed)' }
  return { enabled: true, taskset, server: '0', load: '1', reason: `taskset: gateway/peer + upstream on core 0, load generator on core 1 (${cores} cores available)` }
}

/** argv for `command args`, prefixed by `taskset -c <cpu>` when pinning. */
export function pinned (plan, cpu, command, args) {
  if (!plan.enabled || cpu === null) return { command, args }
  return { command: plan.taskset, args: ['-c', cpu, command, ...args] }
}

/**
 * Starts a Node script as a child (pinned to `cpu`), with IPC. taskset execs the
 * command, so the child's pid is Node's own pid.
 */
export function forkNode (plan, cpu, script, { args = [], env = {}, stdout = 'ignore', execArgv = [] } = {}) {
  const { command, args: argv } = pinned(plan, cpu, process.execPath, [...execArgv, script, ...args])
  return spawn(command, argv, {
    stdio: ['ignore', stdout, 'inherit', 'ipc'],
    env: { ...process.env, ...env }
  })
}

/** Resolves with the first IPC message satisfying `accept`, or rejects on exit / after `ms`. */
export function waitForMessage (child, accept, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { done(new Error(`${what}: no answer within ${ms} ms`)) }, ms)
    function onMessage (message) {
      if (accept(message)) done(null, message)
    }
    function onExit (code, signal) {
      done(new Error(`${what}: exited early (code ${code}, signal ${signal})`))
    }
    function done (error, value) {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (error !== null) reject(error)
      else resolve(value)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/** Waits (bounded) for a child to exit; SIGKILLs it after `ms`. */
export function waitForExit (child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL') }, ms)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Asks a child to stop (IPC `stop`, then SIGTERM, then SIGKILL), bounded. */
export async function stopChild (child, ms = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return
  // The child may be exiting on its own: a failed send is fine, the timers below still apply.
  if (child.connected) child.send({ type: 'stop' }, () => {})
  else child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGTERM') }, Math.floor(ms / 2))
  await waitForExit(child, ms)
  clearTimeout(timer)
}

function childrenOf (pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** Process ids of `pid` and its descendants (nginx workers), bounded. */
export function processTree (pid) {
  const out = [pid]
  for (let i = 0; i < out.length && out.length < 64; i++) out.push(...childrenOf(out[i]))
  return out
}

/** VmRSS of `pid` and its descendants in bytes (0 when /proc is unavailable). */
export function rssBytes (pid) {
  let total = 0
  for (const id of processTree(pid)) {
    try {
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${id}/status`, 'utf8'))
      if (match !== null) total += Number(match[1]) * 1024
    } catch {
      // gone
    }
  }
  return total
}

let clockTicks = null
function ticksPerSecond () {
  if (clockTicks === null) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 })
    const value = Number(out.stdout?.trim())
    clockTicks = Number.isFinite(value) && value > 0 ? value : 100
  }
  return clockTicks
}

/** User + system CPU seconds used so far by `pid` and its descendants (null without /proc). */
export function cpuSeconds (pid) {
  let ticks = 0
  let seen = false
  for (const id of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${id}/stat`, 'utf8')
      // Fields after the command name, which is in parentheses and may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15)
      seen = true
    } catch {
      // gone
    }
  }
  return seen ? ticks / ticksPerSecond() : null
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A free port on 127.0.0.1, for a server that cannot listen on port 0 (the small race before it binds is acceptable here). */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

const LOAD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'load.mjs')

/**
 * Load from autocannon in its own process (lib/load.mjs, pinned to `cpu`) with `settings`
 * ({ url, connections, warmup, duration, method, headers, body }); resolves with its result
 * ({ warmup, measure }). `onMeasure` is called when the measured part starts; `track` gets
 * the child (to kill it if the harness dies).
 */
export async function autocannonLoad (plan, cpu, settings, { onMeasure = () => {}, track = (child) => child } = {}) {
  const child = track(forkNode(plan, cpu, LOAD_SCRIPT, { env: { BENCH_LOAD: JSON.stringify(settings) } }))
  const result = waitForMessage(child, (message) => message?.type === 'result', (settings.warmup + settings.duration + 30) * 1000, 'autocannon')
  child.on('message', (message) => { if (message?.type === 'phase') onMeasure() })
  try {
    return await result
  } finally {
    await stopChild(child, 2000)
  }
}
