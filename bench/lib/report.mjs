// Aggregation (medians over rounds, ratios to the baseline, micro differences)
// and rendering (console table and markdown).
import { BASELINE, MICRO } from './configs.mjs'

export function median (values) {
  const sorted = values.filter((value) => typeof value === 'number' && Number.isFinite(value)).sort((a, b) => a - b)
  if (sorted.length === 0) return null
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

function max (values) {
  const finite = values.filter((value) => typeof value === 'number' && Number.isFinite(value))
  return finite.length === 0 ? null : Math.max(...finite)
}

/**
 * One row per configuration: medians of the runs that ran (a main configuration's rounds,
 * a micro configuration's bursts in its pair), and ratios to the baseline.
 */
export function aggregate (configs, runs) {
  const rows = configs.map((config) => {
    const inPair = config.group !== 'main'
    const mine = runs.filter((run) => run.config === config.name && (run.pair !== undefined) === inPair)
    const good = mine.filter((run) => run.ok)
    return {
      name: config.name,
      title: config.title,
      group: config.group,
      status: mine.length === 0 ? 'skipped' : good.length === mine.length ? 'ok' : 'FAILED',
      rounds: good.length,
      rps: median(good.map((run) => run.rps)),
      p50: median(good.map((run) => run.p50)),
      p99: median(good.map((run) => run.p99)),
      rssMb: max(good.map((run) => run.rssMaxBytes === null ? null : run.rssMaxBytes / 1048576)),
      cpuUsPerRequest: median(good.map((run) => run.cpuUsPerRequest)),
      errors: mine.flatMap((run) => run.problems)
    }
  })
  const base = rows.find((row) => row.name === BASELINE)
  for (const row of rows) {
    const usable = base !== undefined && base.rounds > 0 && row.rounds > 0
    row.rpsRatio = usable ? row.rps / base.rps : null
    row.p50Ratio = usable ? row.p50 / base.p50 : null
    row.p99Ratio = usable ? row.p99 / base.p99 : null
  }
  return rows
}

/**
 * What a feature adds, from its pair's alternating bursts: wall time per request on the
 * saturated server core (1/rps, so the shared upstream's share cancels out), the gateway
 * process's own CPU per request, the throughput change (ratio of the medians) and the
 * median of each burst's own with/without ratio.
 */
export function micro (runs, pairs = MICRO) {
  return pairs.flatMap((pair) => {
    const side = (name) => runs.filter((run) => run.ok && run.pair === pair.name && run.config === name)
    const on = side(pair.with)
    const off = side(pair.without)
    if (on.length === 0 || off.length === 0) return []
    const onRps = median(on.map((run) => run.rps))
    const offRps = median(off.map((run) => run.rps))
    const onCpu = median(on.map((run) => run.cpuUsPerRequest))
    const offCpu = median(off.map((run) => run.cpuUsPerRequest))
    const ratios = []
    for (const run of on) {
      const other = off.find((candidate) => candidate.round === run.round)
      if (other !== undefined) ratios.push(run.rps / other.rps - 1)
    }
    return [{
      name: pair.name,
      issue: pair.issue,
      with: pair.with,
      without: pair.without,
      bursts: Math.min(on.length, off.length),
      addedUsPerRequest: 1e6 / onRps - 1e6 / offRps,
      addedCpuUsPerRequest: onCpu !== null && offCpu !== null ? onCpu - offCpu : null,
      throughputChange: onRps / offRps - 1,
      throughputChangePaired: median(ratios)
    }]
  })
}

const fmt = {
  int: (value) => value === null ? '-' : Math.round(value).toLocaleString('en-US'),
  ms: (value) => value === null ? '-' : value.toFixed(2),
  x: (value) => value === null ? '-' : `${value.toFixed(2)}x`,
  mb: (value) => value === null ? '-' : value.toFixed(0),
  us: (value) => value === null ? '-' : value.toFixed(1),
  signedUs: (value) => value === null ? '-' : `${value >= 0 ? '+' : ''}${value.toFixed(1)}`,
  pct: (value) => value === null ? '-' : `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}%`
}

const MAIN_HEAD = ['configuration', 'req/s', 'x bare', 'p50 ms', 'x bare', 'p99 ms', 'x bare', 'RSS MB', 'CPU us/req', 'runs', 'status']

function mainCells (row) {
  return [row.name, fmt.int(row.rps), fmt.x(row.rpsRatio), fmt.ms(row.p50), fmt.x(row.p50Ratio), fmt.ms(row.p99), fmt.x(row.p99Ratio), fmt.mb(row.rssMb), fmt.us(row.cpuUsPerRequest), String(row.rounds), row.status]
}

const MICRO_HEAD = ['feature', 'with', 'without', 'bursts', 'added us/req (wall)', 'added CPU us/req', 'throughput', 'paired']

function microCells (item) {
  return [item.name, item.with, item.without, String(item.bursts), fmt.signedUs(item.addedUsPerRequest), fmt.signedUs(item.addedCpuUsPerRequest), fmt.pct(item.throughputChange), fmt.pct(item.throughputChangePaired ?? null)]
}

function textTable (head, rows) {
  const widths = head.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column].length)))
  const line = (cells) => cells.map((cell, column) => column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])).join('  ')
  return [line(head), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n')
}

function markdownTable (head, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map((_, column) => column === 0 ? '---' : '---:')), ...rows.map(line)].join('\n')
}

export function consoleReport (rows, microRows) {
  const main = rows.filter((row) => row.group === 'main')
  const extra = rows.filter((row) => row.group !== 'main')
  const parts = [textTable(MAIN_HEAD, main.map(mainCells))]
  if (extra.length > 0) parts.push('', 'micro configurations:', textTable(MAIN_HEAD, extra.map(mainCells)))
  if (microRows.length > 0) parts.push('', 'added cost per request:', textTable(MICRO_HEAD, microRows.map(microCells)))
  return parts.join('\n')
}

export function markdownReport (meta, rows, microRows) {
  const main = rows.filter((row) => row.group === 'main')
  const extra = rows.filter((row) => row.group !== 'main')
  const lines = [
    `# Tollgate benchmark, ${meta.startedAt}`,
    '',
    `- harness command (\`pnpm bench\` runs it after \`pnpm run build\`): \`${meta.command}\``,
    `- machine: ${meta.machine.cpus} x ${meta.machine.cpuModel}, Node ${meta.machine.node}, ${meta.machine.platform}; load average at start ${meta.machine.loadAverageAtStart.map((value) => value.toFixed(2)).join(' / ')} (1 / 5 / 15 min)`,
    `- load: ${meta.load.tool}, ${meta.load.connections} connections, ${meta.load.warmup} s warm-up + ${meta.load.duration} s measured, ${meta.rounds} round(s), configurations interleaved (order rotated each round), each run a fresh process`,
    meta.load.againstMode === 'together'
      ? `- head to head (--against): both servers started and warmed up (${meta.load.warmup} s + ${meta.load.pairSeconds} s each), then ${meta.load.pairBursts} bursts of ${meta.load.burstWarmup} s warm-up + ${meta.load.pairSeconds} s measured, both sides loaded at the same time (work on other threads, such as libuv's thread pool, is not charged to its side: see bench/README.md)`
      : `- ${meta.load.againstMode === 'in-turn' ? 'head to head (--against, in turn)' : 'micro pairs'}: both servers started and warmed up (${meta.load.warmup} s + ${meta.load.pairSeconds} s each), then ${meta.load.pairBursts} alternating bursts of ${meta.load.burstWarmup} s warm-up + ${meta.load.pairSeconds} s measured on each (with, without; then without, with; ...)`,
    `- pinning: ${meta.pinning.reason}`,
    `- baseline for every "x bare" ratio: ${BASELINE} in this run (req/s: higher is better; latency: lower is better)`,
    `- RSS: the highest VmRSS of the server process (and its children) sampled during the measured load; CPU us/req: its user+system CPU time over the measured run divided by the requests answered`,
    ...meta.notes.map((note) => `- note: ${note}`),
    '',
    '## Peers and Tollgate',
    '',
    markdownTable(MAIN_HEAD, main.map(mainCells))
  ]
  if (extra.length > 0) lines.push('', '## Micro configurations', '', markdownTable(MAIN_HEAD, extra.map(mainCells)))
  if (microRows.length > 0) {
    lines.push('', '## Added cost per request', '',
      'Each pair is measured in alternating bursts against the same two warm processes, so a machine that drifts during the run slows both sides alike. wall: 1/req/s difference on the saturated server core (medians over the bursts); CPU: the gateway process\'s own CPU time per request; throughput: ratio of the medians; paired: median of each burst\'s own with/without ratio.', '',
      markdownTable(MICRO_HEAD, microRows.map(microCells)))
  }
  const failures = rows.filter((row) => row.errors.length > 0)
  if (failures.length > 0) {
    lines.push('', '## Problems', '')
    for (const row of failures) for (const error of row.errors) lines.push(`- ${row.name}: ${error}`)
  }
  lines.push('', '## Configurations', '', ...rows.map((row) => `- \`${row.name}\`: ${row.title}`), '')
  return lines.join('\n')
}
