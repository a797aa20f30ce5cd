import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { currentResponse, parseDuration } from '@tollgate/common'
import { SERVER_DEFAULTS } from './gateway.js'
import type { Manifest } from './manifest/types.js'

/**
 * Listens on the manifest's host and port, then on SIGTERM or SIGINT stops
 * accepting, lets in-flight requests finish within `server.shutdownGrace`, and
 * resolves. Connections still open after the grace period are cut.
 */
/**
 * The server's open connections, so that a drain can tell each one's answer in flight to
 * close the connection after it, and close connections that never carried a request.
 */
function trackConnections (server: Server): { drain: () => void, closeIdle: () => void } {
  const open = new Set<Socket>()
  const add = (socket: Socket): void => {
    open.add(socket)
    socket.once('close', () => { open.delete(socket) })
  }
  server.on('connection', add)
  server.on('secureConnection', add)
  const closeIdle = (): void => {
    server.closeIdleConnections()
    // Node counts a connection as idle only after its first request.
    for (const socket of open) if (currentResponse(socket) === null && socket.bytesRead === 0) socket.destroy()
  }
  return {
    drain () {
      for (const socket of open) {
        const answer = currentResponse(socket)
        if (answer != null && !answer.headersSent) answer.setHeader('connection', 'close')
      }
      closeIdle()
    },
    closeIdle
  }
}

/** How often idle keep-alive connections are closed while the gateway drains (ms). */
const IDLE_SWEEP_MS = 100

export async function serveUntilSignal (app: FastifyInstance, manifest: Manifest): Promise<void> {
  const server = manifest.server ?? {}
  const grace = parseDuration(server.shutdownGrace ?? SERVER_DEFAULTS.shutdownGrace, 'server.shutdownGrace')
  const connections = trackConnections(app.server)
  const address = await app.listen({ host: server.host ?? SERVER_DEFAULTS.host, port: server.port ?? SERVER_DEFAULTS.port })
  // Fastify logs the address at info; below that level (`logLevel: warn`) `port: 0` would
  // leave no way to learn the port, and the manifest promises it is logged.
  if (!(app.log as FastifyBaseLogger & { isLevelEnabled: (level: string) => boolean }).isLevelEnabled('info')) {
    app.log.child({}, { level: 'info' }).info({ address }, 'listening')
  }
  try {
    await app.tollgateListeners()
  } catch (error) {
    // A gateway whose redirect listener could not start is not left half started: it stops.
    await app.close()
    throw error
  }
  // A cluster worker is serving only now, every listener up: its primary counts it as started
  // (a worker that fails before this would only fail again, so the primary stops instead).
  process.send?.({ tollgate: 'ready' })

  await new Promise<void>((resolve) => {
    let stopping = false
    // SIGINTs seen: the second is Ctrl-C twice, "stop now". Counted apart from the shutdown
    // itself, since a cluster worker may hear of one Ctrl-C from its primary first.
    let interrupts = 0
    const forceClose = (why: string): void => {
      app.log.warn(`${why}: closing the remaining connections now`)
      app.server.closeAllConnections()
    }
    const stop = (signal: NodeJS.Signals): void => {
      if (signal === 'SIGINT') interrupts++
      if (stopping) {
        // Ctrl-C twice is the usual "stop now"; a repeated SIGTERM (a supervisor's) changes nothing.
        if (signal === 'SIGINT' && interrupts >= 2) forceClose('second SIGINT')
        else app.log.info({ signal }, 'already shutting down')
        return
      }
      stopping = true
      app.log.info({ signal, graceMs: grace }, 'shutting down: no new connections, finishing in-flight requests')
      const deadline = setTimeout(() => { forceClose('shutdown grace period over') }, grace)
      deadline.unref()
      // Answers in flight that have not started say `Connection: close`, so their clients do
      // not send another request on a connection about to close (requests arriving meanwhile
      // get it from Fastify). server.close() waits for every connection: idle ones, and ones
      // never used, are closed now and as they appear.
      connections.drain()
      const sweep = setInterval(() => { connections.closeIdle() }, IDLE_SWEEP_MS)
      sweep.unref()
      const done = (): void => {
        clearTimeout(deadline)
        clearInterval(sweep)
        process.removeListener('SIGTERM', stop)
        process.removeListener('SIGINT', stop)
        process.removeListener('message', onMessage)
        // One more turn: requests cut at the deadline get their log line and count from the
        // close events that follow the server's own.
        setImmediate(resolve)
      }
      app.close().then(() => {
        app.log.info('gateway stopped')
        done()
      }, (error: unknown) => {
        app.log.error({ err: error }, 'error while shutting down')
        done()
      })
    }
    // A cluster worker is told by the primary over IPC, not by a signal: Ctrl-C signals the
    // whole process group, and a forwarded copy would count as a second Ctrl-C.
    const onMessage = (message: unknown): void => {
      const command = (message as { tollgate?: unknown } | null)?.tollgate
      if (command === 'shutdown') stop('SIGTERM')
      else if (command === 'force' && stopping) forceClose('the primary asked')
    }
    // `on`, not `once`: a second signal during the drain would otherwise kill the process.
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    process.on('message', onMessage)
  })
}
