import { buildChatApp } from './app.js'

const port = Number(process.env.PORT ?? 4000)
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be an integer from 0 to 65535 (got "${process.env.PORT ?? ''}")`)
const host = process.env.HOST ?? '127.0.0.1'
const defaultMaxParticipants = Number(process.env.MAX_PARTICIPANTS ?? 10)

const app = await buildChatApp({ defaultMaxParticipants, logger: { level: process.env.LOG_LEVEL ?? 'info' } })

let closing = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (closing) return
    closing = true
    app.close().then(() => process.exit(0), (error: unknown) => {
      app.log.error({ err: error }, 'shutdown failed')
      process.exit(1)
    })
  })
}

await app.listen({ host, port })
