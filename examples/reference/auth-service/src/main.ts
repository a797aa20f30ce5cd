import { buildAuthApp } from './app.js'
import { resolveConfig } from './config.js'
import { generateSigningKey, loadSigningKey } from './keys.js'
import { storeFor } from './store/index.js'

const config = resolveConfig()
const key = config.privateKeyFile === undefined ? generateSigningKey() : await loadSigningKey(config.privateKeyFile)
const store = storeFor(config)
await store.init()
const app = await buildAuthApp({ config, store, key, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
app.log.info({ store: store.kind, kid: key.kid, generatedKey: config.privateKeyFile === undefined }, 'auth service configured')

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

await app.listen({ host: config.host, port: config.port })
