/* global process */
// One configuration under test, in its own process (its own heap and event loop).
// Input: BENCH_SERVER (JSON) in the environment. Output over IPC:
// { type: 'ready', port } once it listens on 127.0.0.1, or { type: 'error', message }.
// Stops on { type: 'stop' } or when the harness goes away.
import { setTimeout as sleep } from 'node:timers/promises'
import { JWT_CLAIMS } from './configs.mjs'
import { ITEM_REQUEST_SCHEMA, ITEM_RESPONSE_SCHEMA } from './contracts.mjs'

const settings = JSON.parse(process.env.BENCH_SERVER ?? '{}')
const HOST = '127.0.0.1'
const warnings = []
const HIGH_LIMIT = 1_000_000_000 // never reached: the limiter runs but never refuses

function tollgateManifest ({ full = false, rateLimit = false, redis = false, contracts = false } = {}) {
  const manifest = {
    version: 1,
    server: full
      ? { host: HOST, port: 0, logLevel: 'info' } // the gateway's defaults otherwise (security headers, docs, metrics)
      : { host: HOST, port: 0, logLevel: 'warn', securityHeaders: false, docs: false },
    upstreams: { bench: { targets: [settings.upstream] } },
    routes: [full
      ? { prefix: '/api', upstream: 'bench', rewritePrefix: '', auth: { methods: ['jwt'], roles: ['user'] }, stripCredentials: true }
      : { prefix: '/api', upstream: 'bench', rewritePrefix: '', auth: false }]
  }
  if (contracts) {
    // The route contract of issue 11: the POST body validated, the 200 answer shaped to 4 fields.
    Object.assign(manifest.routes[0], {
      validate: { POST: { body: ITEM_REQUEST_SCHEMA } },
      response: { 200: ITEM_RESPONSE_SCHEMA }
    })
  }
  if (full) {
    manifest.auth = {
      jwt: {
        jwksUrl: settings.jwksUrl,
        issuer: JWT_CLAIMS.issuer,
        audience: JWT_CLAIMS.audience,
        algorithms: ['RS256'],
        rolesClaim: 'roles'
      },
      identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' }
    }
  }
  if (rateLimit) {
    manifest.rateLimit = {
      algorithm: settings.rlAlgorithm ?? 'sliding-window',
      default: { max: HIGH_LIMIT, window: '1m', by: full ? 'user' : 'ip' },
      onStoreError: 'deny' // a Redis failure must show up as non-2xx, never as a fast fake pass
    }
  }
  if (redis) {
    manifest.redis = { url: settings.redisUrl, keyPrefix: settings.redisPrefix }
    // Under valgrind (instructions.mjs) the server runs ~50x slower than Redis answers it.
    if (settings.redisCommandTimeout !== undefined) manifest.redis.commandTimeout = settings.redisCommandTimeout
  }
  return manifest
}

async function tollgate (options) {
  const { createGateway } = await import('@tollgate/gateway')
  const app = await createGateway(tollgateManifest(options))
  await app.listen({ host: HOST, port: 0 })
  // Ready means /readyz says so (upstream and, when configured, Redis connected); bounded.
  // /readyz must be public (contract); if it is not, say so and let the preflight retry.
  for (let attempt = 0; attempt < 50; attempt++) {
    const response = await app.inject({ method: 'GET', url: '/readyz' })
    if (response.statusCode === 200) break
    if (response.statusCode !== 503) {
      let message = ''
      try {
        message = String(JSON.parse(response.body).message ?? '')
      } catch {
        message = response.body.slice(0, 100)
      }
      warnings.push(`GET /readyz answered ${response.statusCode} "${message}", expected 200 or 503 (the contract says /readyz is not authenticated)`)
      break
    }
    if (attempt === 49) throw new Error(`/readyz still answers 503 after 10 s: ${response.body.slice(0, 300)}`)
    await sleep(200)
  }
  return { port: app.server.address().port, close: () => app.close() }
}

async function tollgatePlugins ({ metrics }) {
  const { default: Fastify } = await import('fastify')
  const { default: tollgateProxy } = await import('@tollgate/proxy')
  const app = Fastify({ logger: false })
  if (metrics) {
    const { default: tollgateMetrics } = await import('@tollgate/metrics')
    await app.register(tollgateMetrics, { requestLogs: false })
  }
  await app.register(tollgateProxy, {
    upstreams: { bench: { targets: [settings.upstream] } },
    routes: [{ prefix: '/api', upstream: 'bench', rewritePrefix: '' }]
  })
  await app.listen({ host: HOST, port: 0 })
  return { port: app.server.address().port, close: () => app.close() }
}

const builders = {
  async 'fastify-http-proxy' () {
    const { default: Fastify } = await import('fastify')
    const { default: httpProxy } = await import('@fastify/http-proxy')
    const app = Fastify({ logger: false })
    await app.register(httpProxy, { upstream: settings.upstream, prefix: '/api', rewritePrefix: '' })
    await app.listen({ host: HOST, port: 0 })
    return { port: app.server.address().port, close: () => app.close() }
  },

  async 'fast-gateway' () {
    const { default: gateway } = await import('fast-gateway')
    const service = gateway({ routes: [{ prefix: '/api', target: settings.upstream }] })
    const server = await service.start(0, HOST)
    return { port: server.address().port, close: () => service.close() }
  },

  async express () {
    const { default: express } = await import('express')
    const { createProxyMiddleware } = await import('http-proxy-middleware')
    const { rateLimit } = await import('express-rate-limit')
    const { default: jwt } = await import('jsonwebtoken')
    const publicKey = settings.publicKeyPem
    const app = express()
    app.use(rateLimit({ windowMs: 60_000, limit: HIGH_LIMIT, standardHeaders: 'draft-7', legacyHeaders: false }))
    app.use((request, response, next) => {
      const header = request.headers.authorization
      if (typeof header !== 'string' || !header.startsWith('Bearer ')) {
        response.status(401).json({ message: 'missing token' })
        return
      }
      try {
        request.user = jwt.verify(header.slice(7), publicKey, {
          algorithms: ['RS256'],
          issuer: JWT_CLAIMS.issuer,
          audience: JWT_CLAIMS.audience
        })
        next()
      } catch {
        response.status(401).json({ message: 'invalid token' })
      }
    })
    // Mounted at /api, so Express strips the prefix before the proxy sees the path.
    app.use('/api', createProxyMiddleware({ target: settings.upstream, changeOrigin: true }))
    const server = await new Promise((resolve, reject) => {
      const listening = app.listen(0, HOST, (error) => { if (error) reject(error); else resolve(listening) })
    })
    return { port: server.address().port, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }) }
  },

  'tollgate-proxy': () => tollgate({}),
  'tollgate-full': () => tollgate({ full: true, rateLimit: true }),
  'tollgate-full-redis': () => tollgate({ full: true, rateLimit: true, redis: true }),
  'tollgate-rl-memory': () => tollgate({ rateLimit: true }),
  'tollgate-rl-redis': () => tollgate({ rateLimit: true, redis: true }),
  'tollgate-contracts-off': () => tollgate({}),
  'tollgate-contracts-on': () => tollgate({ contracts: true }),
  'tollgate-plugin-proxy': () => tollgatePlugins({ metrics: false }),
  'tollgate-plugin-metrics': () => tollgatePlugins({ metrics: true }),
  'tollgate-plugin-proxy-twin': () => tollgatePlugins({ metrics: false })
}

const build = builders[settings.name]
if (build === undefined) {
  process.send({ type: 'error', message: `unknown configuration "${settings.name}"` }, () => { process.exit(2) })
  await new Promise(() => {}) // exits in the callback above
}

let running
try {
  running = await build()
} catch (error) {
  process.send({ type: 'error', message: `${settings.name} failed to start: ${error?.message ?? error}` }, () => { process.exit(1) })
  await new Promise(() => {}) // exits in the callback above
}

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  try {
    await running.close()
  } finally {
    process.exit(0)
  }
}
process.on('message', (message) => { if (message?.type === 'stop') void stop() })
process.on('disconnect', () => { void stop() })
process.on('SIGTERM', () => { void stop() })
process.send({ type: 'ready', port: running.port, warnings })
