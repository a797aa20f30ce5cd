#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { isWorker, superviseWorkers } from './cluster.js'
import { createGateway } from './gateway.js'
import { ManifestError } from './manifest/errors.js'
import { loadManifest } from './manifest/load.js'
import type { LoadedManifest } from './manifest/types.js'
import { routeTable } from './routes-table.js'
import { serveUntilSignal } from './run.js'
import { VERSION } from './version.js'

const USAGE = `Usage: tollgate <command> --config <file>

Commands:
  start      start the gateway
  validate   check the manifest and everything it points at, without listening
  routes     print the route table

Options:
  -c, --config <file>  the manifest (YAML or JSON); TOLLGATE_CONFIG when not given
  -h, --help           show this help
  -v, --version        show the version
`

function fail (problems: readonly string[], heading?: string): never {
  if (heading !== undefined) process.stderr.write(`${heading}\n`)
  for (const problem of problems) process.stderr.write(`${problem}\n`)
  process.exit(1)
}

/** A problem as `path: message`; a plugin's option error is already phrased that way. */
function problemsOf (error: unknown): string[] {
  if (error instanceof ManifestError) return [...error.problems]
  const message = error instanceof Error ? error.message : String(error)
  return [/^[\w.[\]-]+: /.test(message) ? message : `gateway: ${message}`]
}

async function load (file: string): Promise<LoadedManifest> {
  try {
    return await loadManifest(file)
  } catch (error) {
    fail(problemsOf(error), `invalid manifest ${file}:`)
  }
}

async function main (argv: string[]): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' }
      }
    })
  } catch (error) {
    fail([`tollgate: ${(error as Error).message}`, '', USAGE])
  }
  const { values, positionals } = parsed
  if (values.version === true) {
    process.stdout.write(`${VERSION}\n`)
    return
  }
  const command = positionals[0]
  if (values.help === true || command === 'help') {
    process.stdout.write(USAGE)
    return
  }
  // No command is a usage error: the usage goes to stderr, with exit 1.
  if (command === undefined) fail([USAGE])
  if (!['start', 'validate', 'routes'].includes(command)) {
    fail([`tollgate: unknown command ${JSON.stringify(command)}`, '', USAGE])
  }
  if (positionals.length > 1) {
    const extra = positionals[1]!
    fail([`tollgate ${command}: unexpected argument ${JSON.stringify(extra)}${positionals.length === 2 ? ` (the manifest goes after --config: tollgate ${command} --config ${extra})` : ''}`])
  }
  const file = values.config ?? process.env.TOLLGATE_CONFIG
  if (file === undefined || file === '') {
    fail([`tollgate ${command}: no manifest: pass --config <file> or set TOLLGATE_CONFIG`])
  }

  const manifest = await load(file)
  if (command === 'routes' || command === 'validate') {
    // Building the gateway (without listening) runs every plugin's own option checks too,
    // so that `routes` exits 1 exactly when `validate` does.
    try {
      const app = await createGateway(manifest, { logLevel: 'silent' })
      await app.close()
    } catch (error) {
      fail(problemsOf(error), `invalid manifest ${file}:`)
    }
  }
  if (command === 'routes') {
    process.stdout.write(routeTable(manifest))
    return
  }
  if (command === 'validate') {
    process.stdout.write(`${file}: valid (${manifest.routes.length} routes, ${Object.keys(manifest.upstreams).length} upstreams)\n`)
    return
  }

  if ((manifest.server?.workers ?? 1) > 1 && !isWorker()) {
    // Check everything once in the primary so a bad manifest exits 1 before any worker starts.
    try {
      const app = await createGateway(manifest, { logLevel: 'silent' })
      await app.close()
    } catch (error) {
      fail(problemsOf(error), `not starting: invalid manifest ${file}:`)
    }
    const log = (message: string): void => { process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: message })}\n`) }
    process.exit(await superviseWorkers(manifest, log))
  }

  let app
  try {
    app = await createGateway(manifest)
  } catch (error) {
    fail(problemsOf(error), `not starting: invalid manifest ${file}:`)
  }
  try {
    await serveUntilSignal(app, manifest)
    // A cluster worker's IPC channel would keep it alive after a clean stop.
    if (isWorker()) process.exit(0)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const server = manifest.server ?? {}
    await app.close().catch(() => {})
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      fail([`server.port: cannot listen on ${server.host ?? '0.0.0.0'}:${server.port ?? 8080} (${code})`], 'not starting:')
    }
    fail(problemsOf(error), 'gateway failed:')
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  fail(problemsOf(error), 'tollgate: unexpected error:')
})
