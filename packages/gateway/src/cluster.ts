import cluster, { type Worker } from 'node:cluster'
import type { Manifest } from './manifest/types.js'

/**
 * Runs `server.workers` copies of the gateway on one port with node:cluster. The
 * primary only supervises: it restarts a worker that dies unexpectedly, tells every
 * worker to shut down on SIGTERM/SIGINT (each drains its in-flight requests within
 * shutdownGrace; a second SIGINT cuts the drain short), and resolves with 0 once all
 * have exited cleanly.
 */
export async function superviseWorkers (manifest: Manifest, log: (message: string) => void): Promise<number> {
  const count = manifest.server?.workers ?? 1
  if (manifest.redis === undefined && (manifest.rateLimit !== undefined || manifest.routes.some((route) => route.rateLimit !== undefined && route.rateLimit !== false))) {
    log(`warning: server.workers is ${count} without a redis section: each worker keeps its own rate-limit counts, so a client can get up to ${count}x a limit`)
  }
  let stopping = false
  let failed = false
  const restarts: number[] = []

  const fork = (): Worker => cluster.fork({ TOLLGATE_WORKER: '1' })
  for (let i = 0; i < count; i++) fork()
  log(`started ${count} workers`)
  // Workers that got as far as serving (every listener up, said over IPC): one that dies
  // before (a port in use, a host that does not resolve, a redirect port taken) would only
  // die again, so it stops the gateway at once.
  const listened = new Set<number>()
  cluster.on('message', (worker, message: { tollgate?: unknown } | null) => {
    if (message?.tollgate === 'ready') listened.add(worker.id)
  })

  return await new Promise<number>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      if (!stopping && !listened.has(worker.id)) {
        log(`worker ${worker.process.pid ?? '?'} exited (${signal ?? code}) before it could listen: stopping`)
        failed = true
        stop('SIGTERM')
      } else if (!stopping) {
        // A worker that dies while serving is replaced, but a crash loop is not hidden:
        // more than 5 deaths in 10 s stops the gateway with exit 1.
        const now = Date.now()
        restarts.push(now)
        while (restarts.length > 0 && restarts[0]! < now - 10_000) restarts.shift()
        log(`worker ${worker.process.pid ?? '?'} exited (${signal ?? code}); ${restarts.length > 5 ? 'crash loop: stopping' : 'starting a new one'}`)
        if (restarts.length > 5) {
          failed = true
          stop('SIGTERM')
        } else {
          fork()
        }
      } else if (code !== 0) {
        failed = true
      }
      if (stopping && Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : 0)
    })
    // Workers are told over IPC, not sent the signal: Ctrl-C already signals every process
    // of the group, and a forwarded SIGINT would be each worker's second, its "stop now".
    const tell = (command: 'shutdown' | 'force'): void => {
      for (const worker of Object.values(cluster.workers ?? {})) {
        if (worker === undefined) continue
        if (worker.isConnected()) worker.send({ tollgate: command })
        else worker.process.kill(command === 'force' ? 'SIGKILL' : 'SIGTERM')
      }
    }
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second Ctrl-C (or SIGINT sent to the primary alone) cuts the drain short.
        if (signal === 'SIGINT') tell('force')
        return
      }
      stopping = true
      tell('shutdown')
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : 0)
    }
    // `on`, not `once`: a second signal while the workers drain must not kill the primary.
    process.on('SIGTERM', () => { stop('SIGTERM') })
    process.on('SIGINT', () => { stop('SIGINT') })
  })
}

export const isWorker = (): boolean => cluster.isWorker
