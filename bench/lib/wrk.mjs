/* global process, setTimeout, clearTimeout */
// wrk as the load generator (used when `wrk` is on PATH): one thread, fixed
// connections, a Lua script that sets the Authorization header (and, for the
// POST configurations, the method, body and Content-Type) and counts every
// non-2xx answer, and prints one JSON line we parse.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pinned } from './proc.mjs'

const SCRIPT = String.raw`
local threads = {}
local auth = os.getenv("BENCH_AUTHORIZATION")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
local method = os.getenv("BENCH_METHOD")
if method ~= nil and method ~= "" then wrk.method = method end
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then wrk.body = body end
local contentType = os.getenv("BENCH_CONTENT_TYPE")
if contentType ~= nil and contentType ~= "" then wrk.headers["Content-Type"] = contentType end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("non2xx") or 0) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"durationUs":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

/** Writes the Lua script into `dir` and returns its path. */
export function wrkScript (dir) {
  const path = join(dir, 'bench.lua')
  writeFileSync(path, SCRIPT)
  return path
}

function runOnce (wrk, plan, { url, connections, seconds, script, authorization, method, body, contentType }) {
  const { command, args } = pinned(plan, plan.load, wrk, ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, url])
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BENCH_AUTHORIZATION: authorization ?? '', BENCH_METHOD: method ?? '', BENCH_BODY: body ?? '', BENCH_CONTENT_TYPE: contentType ?? '' } })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk) => { if (out.length < 1e6) out += chunk })
    child.stderr.on('data', (chunk) => { if (err.length < 1e6) err += chunk })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, (seconds + 30) * 1000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      const line = out.split('\n').find((candidate) => candidate.startsWith('WRKJSON '))
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk exited with ${code}: ${err.trim() || out.trim()}`.slice(0, 500)))
        return
      }
      const raw = JSON.parse(line.slice('WRKJSON '.length))
      const seconds = raw.durationUs / 1e6
      const errors = raw.connect + raw.read + raw.write
      resolve({
        requests: raw.requests,
        ok: raw.requests - raw.non2xx,
        non2xx: raw.non2xx,
        errors,
        timeouts: raw.timeout,
        seconds,
        rps: (raw.requests - raw.non2xx) / seconds,
        p50: raw.p50Us / 1000,
        p99: raw.p99Us / 1000,
        statusCodes: {}
      })
    })
  })
}

/** Warm-up then measure, like lib/load.mjs; `onMeasure` is called when the measured run starts. */
export async function runWrk (wrk, plan, { url, connections, warmup, duration, script, authorization, method, body, contentType, onMeasure }) {
  const result = {}
  const request = { url, connections, script, authorization, method, body, contentType }
  if (warmup > 0) result.warmup = await runOnce(wrk, plan, { ...request, seconds: warmup })
  onMeasure()
  result.measure = await runOnce(wrk, plan, { ...request, seconds: duration })
  return result
}
