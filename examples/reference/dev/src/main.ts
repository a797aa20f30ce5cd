import { randomBytes } from 'node:crypto'
import { entries, missingBuilds, referenceDir } from './layout.js'
import { Supervisor } from './supervisor.js'
import { walkthrough, type Urls } from './walkthrough.js'

function port (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    console.error(`${name} must be a port number from 1 to 65535 (got "${raw}")`)
    process.exit(1)
  }
  return value
}

const servicesOnly = process.argv.includes('--services-only')
const host = '127.0.0.1'
const ports = {
  gateway: port('GATEWAY_PORT', 8080),
  auth: port('AUTH_PORT', 3001),
  postsA: port('POSTS_A_PORT', 3002),
  postsB: port('POSTS_B_PORT', 3012),
  chat: port('CHAT_PORT', 4000),
  resumes: port('RESUMES_PORT', 3003)
}
const urls: Urls = {
  gateway: `http://${host}:${ports.gateway}`,
  auth: `http://${host}:${ports.auth}`,
  postsA: `http://${host}:${ports.postsA}`,
  postsB: `http://${host}:${ports.postsB}`,
  chat: `http://${host}:${ports.chat}`,
  // A NestJS microservice on Transport.TCP: no HTTP, the gateway speaks its protocol.
  resumes: `tcp://${host}:${ports.resumes}`
}
const adminEmail = process.env.ADMIN_EMAILS?.split(',')[0]?.trim() || 'admin@example.com'
// The admin account is created by the auth service at startup: a fresh password each start
// (printed below) unless ADMIN_PASSWORD is set, so nobody can claim the address by registering it.
const adminPassword = process.env.ADMIN_PASSWORD || randomBytes(12).toString('base64url')
const redisUrl = process.env.REDIS_URL?.trim() || undefined

const problems = missingBuilds(!servicesOnly)
if (problems.length > 0) {
  console.error('Cannot start the reference deployment:')
  for (const problem of problems) console.error(`  ${problem}`)
  process.exit(1)
}

// Services log warnings only, so the walkthrough stays readable; the gateway logs each request.
const serviceEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ ...process.env, HOST: host, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...extra })
const supervisor = new Supervisor()
supervisor.start({ name: 'auth', args: [entries.auth], env: serviceEnv({ PORT: String(ports.auth), ADMIN_EMAILS: process.env.ADMIN_EMAILS ?? adminEmail, ADMIN_PASSWORD: adminPassword }), readyUrl: `${urls.auth}/health` })
supervisor.start({ name: 'posts-a', args: [entries.posts], env: serviceEnv({ PORT: String(ports.postsA), INSTANCE_ID: 'posts-a' }), readyUrl: `${urls.postsA}/health` })
supervisor.start({ name: 'posts-b', args: [entries.posts], env: serviceEnv({ PORT: String(ports.postsB), INSTANCE_ID: 'posts-b' }), readyUrl: `${urls.postsB}/health` })
supervisor.start({ name: 'chat', args: [entries.chat], env: serviceEnv({ PORT: String(ports.chat) }), readyUrl: `${urls.chat}/health` })
// Ready once its port accepts connections: the service stays a pure microservice, with no HTTP just for a probe.
supervisor.start({ name: 'resumes', args: [entries.resumes], env: serviceEnv({ PORT: String(ports.resumes) }), readyTcp: { host, port: ports.resumes } })

let stopping: Promise<never> | undefined
/** Stops every child once; the first caller's exit code wins (a signal during startup exits 0). */
function stop (code: number): Promise<never> {
  stopping ??= (async () => {
    console.log('\nStopping...')
    await supervisor.stop()
    console.log('All stopped.')
    process.exit(code)
  })()
  return stopping
}
process.once('SIGINT', () => { void stop(0) })
process.once('SIGTERM', () => { void stop(0) })

try {
  // Services first: the gateway fetches the JWKS and health-checks its upstreams as it starts.
  await supervisor.waitReady(30_000)
  if (!servicesOnly) {
    supervisor.start({
      name: 'gateway',
      args: [entries.gatewayCli, 'start', '--config', redisUrl === undefined ? entries.manifest : entries.redisManifest],
      cwd: `${referenceDir}gateway`,
      env: {
        ...process.env,
        GATEWAY_HOST: host,
        GATEWAY_PORT: String(ports.gateway),
        AUTH_URL: urls.auth,
        JWKS_URL: `${urls.auth}/.well-known/jwks.json`,
        POSTS_A_URL: urls.postsA,
        POSTS_B_URL: urls.postsB,
        CHAT_URL: urls.chat,
        RESUMES_TCP: urls.resumes,
        ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl })
      },
      readyUrl: `${urls.gateway}/readyz`
    })
    await supervisor.waitReady(60_000)
  }
} catch (error) {
  if (stopping === undefined) console.error(`\n${(error as Error).message}`)
  await stop(1)
}

if (servicesOnly) {
  console.log(`\nServices ready (no gateway): auth ${urls.auth}, posts ${urls.postsA} and ${urls.postsB}, chat ${urls.chat}, resumes ${urls.resumes} (NestJS, TCP). Ctrl-C stops them.`)
} else {
  console.log(walkthrough(urls, { email: adminEmail, password: adminPassword }))
  if (redisUrl !== undefined) console.log(`Rate limits are shared through Redis at ${redisUrl.replace(/\/\/[^@/]*@/, '//***@')}.`)
}
console.log('READY')

const { name, code } = await supervisor.unexpectedExit
if (stopping === undefined) {
  console.error(`\n${name} exited unexpectedly (code ${String(code)}); stopping the others.`)
  await stop(1)
}
