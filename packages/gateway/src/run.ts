import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { parseDuration } from '@tollgate/common'
import { SERVER_DEFAULTS } from './gateway.js'
import type { Manifest } from './manifest/types.js'

/**
 * Listens on the manifest's host and port, then on SIGTERM or SIGINT stops
 * accepting, lets in-flight requests finish within `server.shutdownGrace`, and
 * resolves. Connections still open after the grace period are cut.
 */
export async function serveUntilSignal (app: FastifyInstance, manifest: Manifest): Promise<void> {
  const server = manifest.server ?? {}
  const grace = parseDuration(server.shutdownGrace ?? SERVER_DEFAULTS.shutdownGrace, 'server.shutdownGrace')
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

  await new Promise<void>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // Ctrl-C twice is the usual "stop now"; a repeated SIGTERM (a supervisor's) changes nothing.
        if (signal === 'SIGINT') {
          app.log.warn('second SIGINT: closing the remaining connections now')
          app.server.closeAllConnections()
        } else {
          app.log.info({ signal }, 'already shutting down')
        }
        return
      }
      stopping = true
      app.log.info({ signal, graceMs: grace }, 'shutting down: no new connections, finishing in-flight requests')
      const deadline = setTimeout(() => {
        app.log.warn('shutdown grace period over: closing the remaining connections')
        app.server.closeAllConnections()
      }, grace)
      deadline.unref()
      const done = (): void => {
        process.removeListener('SIGTERM', stop)
        process.removeListener('SIGINT', stop)
        resolve()
      }
      app.close().then(() => {
        clearTimeout(deadline)
        app.log.info('gateway stopped')
        done()
      }, (error: unknown) => {
        app.log.error({ err: error }, 'error while shutting down')
        done()
      })
    }
    // `on`, not `once`: a second signal during the drain would otherwise kill the process.
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}
