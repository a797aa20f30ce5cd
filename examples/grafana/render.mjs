#!/usr/bin/env node
/* global process, console, fetch, URL, AbortSignal, Buffer */
// Draws the Grafana dashboard's main panels from real metrics, for the README (Grafana
// itself is not available where the picture is made).
//
//   node examples/grafana/render.mjs [--seconds 80] [--out examples/grafana/dashboard.png]
//
// Starts the reference deployment (the services and gateway of examples/reference, built) on
// free ports, drives a bounded mix of client traffic through the gateway (one posts instance
// is stopped and restarted mid-run), scrapes /metrics every second,
// evaluates each panel's queries on those samples (rates over a sliding window,
// histogram_quantile with Prometheus' interpolation), lays the panels out with the
// dashboard's own gridPos, titles and units as one SVG page, and screenshots it with
// headless Chromium. Everything it starts is stopped before it exits.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = fileURLToPath(new URL('../../', import.meta.url))
const argument = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const SECONDS = Math.min(Math.max(Number(argument('seconds', '90')), 30), 300)
const OUT = argument('out', join(here, 'dashboard.png'))
const CHROMIUM = process.env.CHROMIUM ?? 'chromium'
const RATE_WINDOW = 6 // seconds of scrapes per rate(), as $__rate_interval would be
const dashboard = JSON.parse(readFileSync(join(here, 'tollgate-dashboard.json'), 'utf8'))

// ---------------------------------------------------------------- the deployment
async function freePorts (count) {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })))
  const ports = servers.map((server) => server.address().port)
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

const { entries, missingBuilds, referenceDir } = await import(join(root, 'examples/reference/dev/dist/layout.js')).catch(() => {
  throw new Error('examples/reference/dev is not built: run `pnpm run build && pnpm exec tsc -b examples/reference/dev` from the repository root')
})
const { Supervisor } = await import(join(root, 'examples/reference/dev/dist/supervisor.js'))
const problems = missingBuilds(true)
if (problems.length > 0) throw new Error(problems.join('\n'))

// The reference deployment, as its starter runs it, except that posts-b has a supervisor of
// its own: it is stopped mid-run (connections refused: retries, circuit, health) and restarted.
const [gatewayPort, authPort, postsA, postsB, chatPort] = await freePorts(5)
const base = `http://127.0.0.1:${gatewayPort}`
const url = (port) => `http://127.0.0.1:${port}`
let log = ''
const sink = new Writable({ write (chunk, _encoding, done) { log = (log + chunk.toString()).slice(-20_000); done() } })
const serviceEnv = (extra) => ({ ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...extra })
const services = new Supervisor(sink)
const supervisors = [services]
const startPostsB = async () => {
  const supervisor = new Supervisor(sink)
  supervisors.push(supervisor)
  supervisor.start({ name: 'posts-b', args: [entries.posts], env: serviceEnv({ PORT: String(postsB), INSTANCE_ID: 'posts-b' }), readyUrl: `${url(postsB)}/health` })
  await supervisor.waitReady(30_000)
  return supervisor
}

async function stopAll () {
  for (const supervisor of supervisors.reverse()) await supervisor.stop(10_000)
}
process.once('SIGINT', () => { void stopAll().then(() => process.exit(130)) })
process.once('SIGTERM', () => { void stopAll().then(() => process.exit(143)) })

async function startDeployment () {
  services.start({ name: 'auth', args: [entries.auth], env: serviceEnv({ PORT: String(authPort), ADMIN_EMAILS: 'boss@example.com', ADMIN_PASSWORD: 'correct horse battery' }), readyUrl: `${url(authPort)}/health` })
  services.start({ name: 'posts-a', args: [entries.posts], env: serviceEnv({ PORT: String(postsA), INSTANCE_ID: 'posts-a' }), readyUrl: `${url(postsA)}/health` })
  services.start({ name: 'chat', args: [entries.chat], env: serviceEnv({ PORT: String(chatPort) }), readyUrl: `${url(chatPort)}/health` })
  await services.waitReady(30_000)
  await startPostsB()
  services.start({
    name: 'gateway',
    args: [entries.gatewayCli, 'start', '--config', entries.manifest],
    cwd: `${referenceDir}gateway`,
    env: {
      ...process.env,
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(gatewayPort),
      AUTH_URL: url(authPort),
      JWKS_URL: `${url(authPort)}/.well-known/jwks.json`,
      POSTS_A_URL: url(postsA),
      POSTS_B_URL: url(postsB),
      CHAT_URL: url(chatPort)
    },
    readyUrl: `${base}/readyz`
  })
  await services.waitReady(60_000)
}

// ---------------------------------------------------------------- client traffic
function call (path, { method = 'GET', headers = {}, body, from } = {}) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(payload.length) })
  return new Promise((resolve) => {
    const url = new URL(path, base)
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, agent: false, localAddress: from, timeout: 20_000 }, (res) => {
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        let json
        try { json = JSON.parse(text) } catch { json = undefined }
        resolve({ status: res.statusCode, json })
      })
      res.on('error', () => resolve({ status: 0 }))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve({ status: 0 }))
    req.end(payload)
  })
}

async function account (email, from) {
  await call('/api/auth/register', { method: 'POST', body: { email, password: 'correct horse battery' }, from })
  const login = await call('/api/auth/login', { method: 'POST', body: { email, password: 'correct horse battery' }, from })
  if (login.status !== 200) throw new Error(`login of ${email} failed (${login.status})`)
  return login.json.accessToken
}

/** Open-loop traffic (clients do not wait for each other), about 15 requests a second, until `until`. */
async function traffic (until, tokens) {
  const bearer = (token) => ({ authorization: `Bearer ${token}` })
  const any = (list) => list[Math.floor(Math.random() * list.length)]
  // Clients come from 20 loopback addresses, so the per-IP default limit (100 a minute) is not the story.
  const from = () => `127.0.0.${30 + Math.floor(Math.random() * 20)}`
  const user = () => any(tokens.users)
  const actions = [
    [32, () => call('/api/posts', { headers: bearer(user()), from: from() })],
    [8, () => call('/api/posts', { method: 'POST', headers: bearer(user()), body: { title: `post ${Date.now()}`, body: 'hello' }, from: from() })],
    [10, () => call('/api/posts', { headers: { 'x-api-key': 'example-partner-key' }, from: from() })],
    [8, () => call('/api/meetings', { headers: bearer(user()), from: from() })],
    [3, () => call('/api/admin/posts', { headers: bearer(tokens.boss), from: from() })],
    [2, () => call('/api/admin/posts', { headers: bearer(user()), from: from() })], // 403 forbidden
    [3, () => call('/api/posts', { from: from() })], // 401 missing
    [2, () => call('/api/posts', { headers: bearer(user().slice(0, -3) + 'AAA'), from: from() })], // 401 invalid
    [1, () => call('/favicon.ico', { from: from() })] // 404 unmatched
  ]
  const total = actions.reduce((sum, [weight]) => sum + weight, 0)
  const pick = () => {
    let n = Math.random() * total
    for (const [weight, action] of actions) if ((n -= weight) < 0) return action
    return actions[0][1]
  }
  const inFlight = new Set()
  const clients = (async () => {
    while (Date.now() < until) {
      if (inFlight.size < 200) {
        const request = pick()().finally(() => inFlight.delete(request))
        inFlight.add(request)
      }
      await sleep(50 + Math.random() * 40)
    }
  })()
  // A credential-stuffing bot: every 15 s, 25 logins from a new address trip the /api/auth limiter.
  const bot = (async () => {
    for (let burst = 0; Date.now() < until; burst++) {
      for (let i = 0; i < 25 && Date.now() < until; i++) {
        await call('/api/auth/login', { method: 'POST', body: { email: 'admin@example.com', password: `guess-${i}-guess` }, from: `127.0.0.${100 + burst}` })
      }
      await sleep(15_000)
    }
  })()
  await Promise.all([clients, bot])
  await Promise.all(inFlight)
}

// ---------------------------------------------------------------- scraping
function parseExposition (text) {
  const samples = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (match === null) continue
    const labels = {}
    for (const m of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2]
    samples.push({ name: match[1], labels, value: Number(match[3]) })
  }
  return samples
}

const scrapes = [] // { t: seconds since start, samples }
async function scrapeLoop (until, start) {
  while (Date.now() < until) {
    const at = Date.now()
    try {
      const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3000) })
      scrapes.push({ t: (at - start) / 1000, samples: parseExposition(await response.text()) })
    } catch { /* a missed scrape is a gap */ }
    await sleep(Math.max(0, 1000 - (Date.now() - at)))
  }
}

// ---------------------------------------------------------------- a few PromQL functions, on the scrapes
const keyOf = (labels, by) => by.map((label) => `${label}=${labels[label] ?? ''}`).join(',')

/** sum by (by) (rate(name{filter}[RATE_WINDOW])) at each scrape: Map<key, number[]> (NaN before a full window). */
function sumRate (name, by, filter = () => true, increase = false) {
  const totals = scrapes.map(({ samples }) => {
    const sums = new Map()
    for (const s of samples) if (s.name === name && filter(s.labels)) sums.set(keyOf(s.labels, by), (sums.get(keyOf(s.labels, by)) ?? 0) + s.value)
    return sums
  })
  const keys = new Set(totals.flatMap((sums) => [...sums.keys()]))
  const out = new Map()
  for (const key of keys) {
    out.set(key, scrapes.map((scrape, i) => {
      const j = i - RATE_WINDOW
      if (j < 0) return NaN
      const delta = (totals[i].get(key) ?? 0) - (totals[j].get(key) ?? 0) // a series born in the window started at 0
      return increase ? Math.max(0, delta) : Math.max(0, delta) / (scrape.t - scrapes[j].t)
    }))
  }
  return out
}

/** histogram_quantile(q, sum by (le, by) (rate(name_bucket[w]))), with Prometheus' linear interpolation. */
function quantile (q, name, by, filter = () => true) {
  const buckets = sumRate(`${name}_bucket`, [...by, 'le'], filter)
  const groups = new Map()
  for (const [key, values] of buckets) {
    const le = key.match(/le=([^,]*)$/)[1]
    const group = key.replace(/,?le=[^,]*$/, '')
    if (!groups.has(group)) groups.set(group, [])
    groups.get(group).push({ le: le === '+Inf' ? Infinity : Number(le), values })
  }
  const out = new Map()
  for (const [group, list] of groups) {
    list.sort((a, b) => a.le - b.le)
    out.set(group, scrapes.map((_scrape, i) => {
      const total = list[list.length - 1].values[i]
      if (!(total > 0)) return NaN
      const rank = q * total
      let previousLe = 0
      let previousCount = 0
      for (const { le, values } of list) {
        const count = values[i]
        if (count >= rank) {
          if (le === Infinity) return previousLe
          return previousLe + (le - previousLe) * (count === previousCount ? 0 : (rank - previousCount) / (count - previousCount))
        }
        previousLe = le
        previousCount = count
      }
      return NaN
    }))
  }
  return out
}

function ratio (numerator, denominator) {
  const out = new Map()
  for (const [key, values] of denominator) {
    const top = numerator.get(key)
    out.set(key, values.map((value, i) => (value > 0 ? (top?.[i] ?? 0) / value : NaN)))
  }
  return out
}

function gauge (name, by) {
  const out = new Map()
  scrapes.forEach(({ samples }, i) => {
    for (const s of samples) {
      if (s.name !== name) continue
      const key = keyOf(s.labels, by)
      if (!out.has(key)) out.set(key, scrapes.map(() => NaN))
      out.get(key)[i] = s.value
    }
  })
  return out
}

const label = (template) => (key) => {
  const labels = Object.fromEntries(key.split(',').filter(Boolean).map((pair) => pair.split('=')))
  return template.replace(/\{\{(\w+)\}\}/g, (_all, name) => (labels[name] ?? '').replace(/^http:\/\/127\.0\.0\.1:/, ':'))
}
const named = (series, template) => [...series].map(([key, values]) => ({ name: label(template)(key), values }))
const lastOf = (values) => { for (let i = values.length - 1; i >= 0; i--) if (Number.isFinite(values[i])) return values[i]; return NaN }


/** What each panel of the dashboard shows, computed as its PromQL would be. Keyed by panel title. */
function panelData () {
  const status5 = (l) => /^5/.test(l.status)
  const status4 = (l) => /^4/.test(l.status)
  const byRoute = sumRate('tollgate_requests_total', ['route'])
  const all = sumRate('tollgate_requests_total', [])
  const total = [...all.values()][0] ?? scrapes.map(() => 0)
  const fives = [...sumRate('tollgate_requests_total', [], status5).values()][0] ?? scrapes.map(() => 0)
  const p99 = [...quantile(0.99, 'tollgate_request_duration_seconds', []).values()][0] ?? []
  const health = gauge('tollgate_upstream_target_healthy', ['upstream', 'target'])
  const unhealthy = scrapes.map((_s, i) => [...health.values()].filter((values) => values[i] === 0).length)
  return {
    'Requests / s': { stat: lastOf(total) },
    '5xx share': { stat: lastOf(total.map((value, i) => (value > 0 ? fives[i] / value : NaN))), peak: Math.max(0, ...total.map((value, i) => (value > 0 ? fives[i] / value : 0))) },
    'p99 latency': { stat: lastOf(p99), peak: Math.max(0, ...p99.filter(Number.isFinite)) },
    'Unhealthy targets': { stat: lastOf(unhealthy), peak: Math.max(0, ...unhealthy) },
    'Request rate by route': { series: named(byRoute, '{{route}}') },
    'Error rate by route': {
      series: [
        ...named(ratio(sumRate('tollgate_requests_total', ['route'], status5), byRoute), '{{route}} 5xx'),
        ...named(ratio(sumRate('tollgate_requests_total', ['route'], status4), byRoute), '{{route}} 4xx').map((s) => ({ ...s, dashed: true }))
      ]
    },
    'Latency by route (p50, p95, p99)': {
      series: [0.5, 0.95, 0.99].flatMap((q) => named(quantile(q, 'tollgate_request_duration_seconds', ['route']), `{{route}} p${Math.round(q * 100)}`))
        .filter((s) => /^\/api\/(posts|auth) /.test(s.name)),
      note: '$route = /api/posts, /api/auth'
    },
    'Responses by status': { series: named(sumRate('tollgate_requests_total', ['status']), '{{status}}'), stack: true },
    'Upstream latency by target (p95)': { series: named(quantile(0.95, 'tollgate_upstream_duration_seconds', ['upstream', 'target']), '{{upstream}} {{target}}') },
    'Upstream target health': { timeline: named(health, '{{upstream}} {{target}}') },
    'Retries by target': { series: named(sumRate('tollgate_upstream_retries_total', ['upstream', 'target']), '{{upstream}} {{target}}'), bars: true },
    'Circuit state changes': { series: named(sumRate('tollgate_circuit_state_changes_total', ['upstream', 'target', 'state'], undefined, true), '{{upstream}} {{target}} → {{state}}'), bars: true },
    'Rate-limited by route': { series: named(sumRate('tollgate_rate_limited_total', ['route']), '{{route}}') },
    'Auth failures by reason': { series: named(sumRate('tollgate_auth_failures_total', ['reason']), '{{reason}}'), stack: true },
    'Store errors': { series: named(sumRate('tollgate_store_errors_total', ['store']), '{{store}}') }
  }
}

// ---------------------------------------------------------------- drawing
const PALETTE = ['#73BF69', '#F2CC0C', '#8AB8FF', '#FF780A', '#F2495C', '#5794F2', '#B877D9', '#705DA0', '#37872D', '#FADE2A', '#FF9830', '#C4162A']
const WIDTH = 1600
const UNIT_H = 30
const COL = WIDTH / 24
const esc = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

function format (value, unit, digits = 1) {
  if (!Number.isFinite(value)) return 'No data'
  switch (unit) {
    case 'reqps': return `${value >= 100 ? value.toFixed(0) : value.toFixed(digits)} req/s`
    case 'percentunit': return `${(value * 100).toFixed(value < 0.1 ? 2 : 1)}%`
    case 's': return value >= 1 ? `${value.toFixed(2)} s` : value >= 0.001 ? `${(value * 1000).toFixed(value >= 0.1 ? 0 : 1)} ms` : `${(value * 1e6).toFixed(0)} µs`
    case 'bytes': return `${(value / 1048576).toFixed(0)} MiB`
    default: return value >= 100 ? value.toFixed(0) : String(Math.round(value * 100) / 100)
  }
}

function niceMax (max) {
  if (!(max > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(max))
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power
  return 10 * power
}

function panelFrame (panel, body) {
  const { x, y, w, h } = panel.gridPos
  const px = x * COL + 4
  const py = y * UNIT_H + 4
  return `<g transform="translate(${px},${py})"><rect width="${w * COL - 8}" height="${h * UNIT_H - 8}" rx="3" fill="#181b1f" stroke="#2c3235"/>` +
    `<text x="10" y="20" class="title">${esc(panel.title)}</text>${body(w * COL - 8, h * UNIT_H - 8)}</g>`
}

function statPanel (panel, data) {
  const unit = panel.fieldConfig.defaults.unit
  const steps = panel.fieldConfig.defaults.thresholds.steps
  const value = data.stat
  let color = steps[0].color
  for (const step of steps) if (step.value !== null && value >= step.value) color = step.color
  const fill = { green: '#37872D', orange: '#FF9830', red: '#C4162A' }[color] ?? color
  const peak = data.peak === undefined ? '' : `<text x="${0}" y="0" class="sub" text-anchor="middle">peak during the run: ${esc(format(data.peak, unit))}</text>`
  return panelFrame(panel, (w, h) => `<rect x="6" y="28" width="${w - 12}" height="${h - 34}" rx="2" fill="${fill}" opacity="0.9"/>` +
    `<text x="${w / 2}" y="${h / 2 + 20}" class="big" text-anchor="middle">${esc(format(value, unit === 'none' ? 'none' : unit, 1))}</text>` +
    (peak === '' ? '' : `<g transform="translate(${w / 2},${h - 12})">${peak}</g>`))
}

function timeseriesPanel (panel, data, tEnd) {
  const unit = panel.fieldConfig.defaults.unit
  const series = (data.series ?? []).filter((s) => s.values.some((v) => Number.isFinite(v) && (v > 0 || !data.bars)))
  return panelFrame(panel, (w, h) => {
    const legendRows = Math.min(series.length, Math.max(1, Math.floor((h - 60) / 15)))
    const legendW = Math.min(260, w * 0.36)
    const left = 62
    const top = 32
    const plotW = w - left - legendW - 14
    const plotH = h - top - 26
    const note = data.note === undefined ? '' : `<text x="${w - 10}" y="20" class="axis" text-anchor="end">${esc(data.note)}</text>`
    if (series.length === 0) return note +  `<text x="${w / 2}" y="${h / 2 + 8}" class="nodata" text-anchor="middle">No data</text>`
    const stacked = data.stack ? series.map((_s, k) => scrapes.map((_x, i) => series.slice(0, k + 1).reduce((sum, s) => sum + (Number.isFinite(s.values[i]) ? s.values[i] : 0), 0))) : series.map((s) => s.values)
    const max = niceMax(Math.max(...stacked.flat().filter(Number.isFinite)))
    const X = (i) => left + (scrapes[i].t / tEnd) * plotW
    const Y = (v) => top + plotH - (v / max) * plotH
    let out = note
    for (let k = 0; k <= 4; k++) {
      const v = (max * k) / 4
      out += `<line x1="${left}" x2="${left + plotW}" y1="${Y(v)}" y2="${Y(v)}" class="grid"/><text x="${left - 6}" y="${Y(v) + 4}" class="axis" text-anchor="end">${esc(format(v, unit))}</text>`
    }
    for (let s = 0; s <= tEnd; s += 15) out += `<text x="${left + (s / tEnd) * plotW}" y="${top + plotH + 16}" class="axis" text-anchor="middle">${s}s</text>`
    stacked.forEach((values, k) => {
      const color = PALETTE[k % PALETTE.length]
      if (data.bars) {
        values.forEach((v, i) => { if (v > 0) out += `<rect x="${X(i) - 3}" y="${Y(v)}" width="6" height="${top + plotH - Y(v)}" fill="${color}" opacity="0.85"/>` })
        return
      }
      let d = ''
      let pen = 'M'
      values.forEach((v, i) => {
        if (!Number.isFinite(v)) { pen = 'M'; return }
        d += `${pen}${X(i).toFixed(1)},${Y(v).toFixed(1)} `
        pen = 'L'
      })
      if (data.stack) {
        const below = k === 0 ? values.map(() => 0) : stacked[k - 1]
        const area = values.map((v, i) => `${X(i).toFixed(1)},${Y(Number.isFinite(v) ? v : 0).toFixed(1)}`).join(' ') + ' ' +
          below.map((v, i) => `${X(i).toFixed(1)},${Y(Number.isFinite(v) ? v : 0).toFixed(1)}`).reverse().join(' ')
        out += `<polygon points="${area}" fill="${color}" opacity="0.35"/>`
      }
      out += `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"${series[k].dashed ? ' stroke-dasharray="6 4"' : ''}/>`
    })
    const lx = left + plotW + 14
    out += `<text x="${lx}" y="${top + 4}" class="legendhead">name</text><text x="${w - 8}" y="${top + 4}" class="legendhead" text-anchor="end">max</text>`
    series.slice(0, legendRows).forEach((s, k) => {
      const y = top + 20 + k * 15
      const name = s.name.length > 30 ? s.name.slice(0, 29) + '…' : s.name
      const peak = Math.max(...s.values.filter(Number.isFinite))
      out += `<rect x="${lx}" y="${y - 8}" width="10" height="3" fill="${PALETTE[k % PALETTE.length]}"/><text x="${lx + 15}" y="${y}" class="legend">${esc(name)}</text>` +
        `<text x="${w - 8}" y="${y}" class="legend" text-anchor="end">${esc(format(peak, unit))}</text>`
    })
    if (series.length > legendRows) out += `<text x="${lx + 15}" y="${top + 20 + legendRows * 15}" class="legend">+${series.length - legendRows} more</text>`
    return out
  })
}

function timelinePanel (panel, data, tEnd) {
  const rows = data.timeline
  return panelFrame(panel, (w, h) => {
    const left = 150
    const top = 34
    const rowH = Math.min(32, (h - top - 26) / Math.max(rows.length, 1))
    const plotW = w - left - 12
    const X = (t) => left + (t / tEnd) * plotW
    let out = ''
    rows.forEach((row, k) => {
      const y = top + k * rowH
      out += `<text x="${left - 8}" y="${y + rowH / 2 + 4}" class="legend" text-anchor="end">${esc(row.name)}</text>`
      let start = 0
      for (let i = 1; i <= scrapes.length; i++) {
        if (i < scrapes.length && row.values[i] === row.values[start]) continue
        const value = row.values[start]
        const x0 = X(scrapes[start].t)
        const x1 = i < scrapes.length ? X(scrapes[i].t) : X(tEnd)
        const color = value === 1 ? '#37872D' : value === 0 ? '#C4162A' : '#2c3235'
        out += `<rect x="${x0}" y="${y + 2}" width="${Math.max(1, x1 - x0)}" height="${rowH - 4}" fill="${color}"/>`
        if (x1 - x0 > 44) out += `<text x="${x0 + 6}" y="${y + rowH / 2 + 4}" class="legend">${value === 1 ? 'UP' : value === 0 ? 'DOWN' : ''}</text>`
        start = i
      }
    })
    for (let s = 0; s <= tEnd; s += 15) out += `<text x="${X(s)}" y="${top + rows.length * rowH + 16}" class="axis" text-anchor="middle">${s}s</text>`
    return out
  })
}

function rowHeader (panel) {
  return `<text x="8" y="${panel.gridPos.y * UNIT_H + 21}" class="row">${panel.collapsed ? '›' : '⌄'} ${esc(panel.title)}</text>`
}

function page (data, tEnd, notes) {
  const drawn = []
  let bottom = 0
  for (const panel of dashboard.panels) {
    if (panel.type === 'row') {
      if (panel.collapsed) continue // the process row: collapsed in the dashboard, left out here
      drawn.push(rowHeader(panel))
      continue
    }
    const panelData = data[panel.title]
    if (panelData === undefined) throw new Error(`render.mjs does not know how to draw panel "${panel.title}"`)
    bottom = Math.max(bottom, (panel.gridPos.y + panel.gridPos.h) * UNIT_H)
    if (panel.type === 'stat') drawn.push(statPanel(panel, panelData))
    else if (panel.type === 'state-timeline') drawn.push(timelinePanel(panel, panelData, tEnd))
    else drawn.push(timeseriesPanel(panel, panelData, tEnd))
  }
  const height = bottom + 60
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">
<style>
  text { font-family: Inter, "DejaVu Sans", Helvetica, Arial, sans-serif; fill: #ccccdc; }
  .title { font-size: 13px; font-weight: 600; } .row { font-size: 15px; font-weight: 600; }
  .axis { font-size: 10px; fill: #8e8e9a; } .legend { font-size: 11px; } .legendhead { font-size: 10px; fill: #6e9fff; }
  .big { font-size: 34px; font-weight: 600; fill: #fff; } .sub { font-size: 11px; fill: #f0f0f0; } .nodata { font-size: 14px; fill: #8e8e9a; }
  .grid { stroke: #2c3235; stroke-width: 1; }
</style>
<rect width="100%" height="100%" fill="#111217"/>
<g transform="translate(0,44)">${drawn.join('\n')}</g>
<text x="12" y="28" style="font-size:18px;font-weight:600">${esc(dashboard.title)}</text>
<text x="${WIDTH - 12}" y="28" class="axis" text-anchor="end" style="font-size:12px">${esc(notes)}</text>
<text x="12" y="${height - 10}" class="axis" style="font-size:11px">Rendered by examples/grafana/render.mjs from ${scrapes.length} real scrapes of the gateway's /metrics (not a Grafana screenshot). Rates over ${RATE_WINDOW}s windows; x axis: seconds since the first scrape.</text>
</svg>`
  return { html: `<!doctype html><html><head><meta charset="utf-8"><title>${esc(dashboard.title)}</title><style>html,body{margin:0;background:#111217}</style></head><body>${svg}</body></html>`, height: height }
}

function screenshot (htmlFile, height) {
  const profile = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'))
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--hide-scrollbars', `--user-data-dir=${profile}`, `--window-size=${WIDTH},${height}`, `--screenshot=${OUT}`, `file://${htmlFile}`]
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, args, { timeout: 90_000, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true })
      if (error) reject(new Error(`${CHROMIUM} failed (${error.message}); install it (apt-get install -y chromium) or set CHROMIUM\n${stderr}`))
      else resolve()
    })
  })
}

// ---------------------------------------------------------------- the run
let failed = false
try {
  await startDeployment()
  console.log(`reference deployment ready at ${base}; ${SECONDS}s of traffic`)
  const users = []
  for (let i = 0; i < 6; i++) users.push(await account(`user${i}@example.com`, `127.0.0.${11 + i}`))
  const tokens = { users, boss: await account('boss@example.com', '127.0.0.20') }
  const start = Date.now()
  const until = start + SECONDS * 1000
  // posts-b goes away (stopped: connections refused) at 35% of the run and is back at 60%.
  const incident = (async () => {
    await sleep(SECONDS * 350)
    await supervisors[1].stop(10_000)
    console.log('posts-b stopped')
    await sleep(SECONDS * 250)
    await startPostsB()
    console.log('posts-b restarted')
  })()
  await Promise.all([traffic(until, tokens), scrapeLoop(until, start), incident])
  const tEnd = scrapes[scrapes.length - 1].t
  const { html, height } = page(panelData(), Math.ceil(tEnd), `reference deployment · ${SECONDS}s of client traffic · posts-b stopped at ${Math.round(SECONDS * 0.35)}s, back at ${Math.round(SECONDS * 0.6)}s`)
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-dashboard-'))
  const htmlFile = join(dir, 'dashboard.html')
  writeFileSync(htmlFile, html)
  console.log(`drew ${htmlFile}`)
  await screenshot(htmlFile, height + 20)
  console.log(`wrote ${OUT}`)
} catch (error) {
  failed = true
  console.error(error instanceof Error ? error.message : error)
} finally {
  await stopAll()
}
process.exit(failed ? 1 : 0)
