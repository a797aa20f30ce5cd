import 'reflect-metadata'
import { createResumesService } from './app.js'

const port = Number(process.env.PORT ?? 3003)
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be an integer from 0 to 65535 (got "${process.env.PORT ?? ''}")`)
const host = process.env.HOST ?? '127.0.0.1'

const app = await createResumesService({ host, port, logLevel: process.env.LOG_LEVEL ?? 'info' })

let closing = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (closing) return
    closing = true
    app.close().then(() => process.exit(0), (error: unknown) => {
      console.error(`shutdown failed: ${(error as Error).message}`)
      process.exit(1)
    })
  })
}

try {
  await app.listen()
} catch (error) {
  // A port in use, say: exit, so whoever started the service sees it fail.
  console.error(`cannot listen on ${host}:${port}: ${(error as Error).message}`)
  process.exit(1)
}
