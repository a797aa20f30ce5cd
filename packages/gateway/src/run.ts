import type { FastifyInstance } from 'fastify'
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
  await app.listen({ host: server.host ?? SERVER_DEFAULTS.host, port: server.port ?? SERVER_DEFAULTS.port })

  await new Promise<void>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return
      stopping = true
      app.log.info({ signal, graceMs: grace }, 'shutting down: no new connections, finishing in-flight requests')
      const deadline = setTimeout(() => {
        app.log.warn('shutdown grace period over: closing the remaining connections')
        app.server.closeAllConnections()
      }, grace)
      deadline.unref()
      app.close().then(() => {
        clearTimeout(deadline)
        app.log.info('gateway stopped')
        resolve()
      }, (error: unknown) => {
        app.log.error({ err: error }, 'error while shutting down')
        resolve()
      })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}
