// A three-target pool where one target dies under load, then comes back: retries and
// ejection keep clients served, and the recovered target gets traffic again.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import Fastify from 'fastify'
import { Pool } from 'undici'
import { tollgateRuntime } from '@tollgate/common'
import tollgateProxy from '../src/index.js'
import { eventually, listen } from './helpers/servers.js'

/** An upstream that can be stopped (every socket reset) and started again on the same port. */
class Restartable {
  hits = 0
  port = 0
  #server: Server | null = null
  readonly #sockets = new Set<Socket>()
  readonly name: string
  constructor (name: string) { this.name = name }

  get url (): string { return `http://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    const server = createServer((req, res) => {
      if (req.url !== '/health') this.hits++
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(this.name)
    })
    server.keepAliveTimeout = 60_000
    server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', resolve)
    })
    this.port = (server.address() as AddressInfo).port
    this.#server = server
  }

  /** Dies abruptly: open connections are reset, new ones refused. */
  async stop (): Promise<void> {
    const server = this.#server
    if (server === null) return
    this.#server = null
    const closed = new Promise<void>((resolve) => server.close(() => { resolve() }))
    for (const socket of this.#sockets) socket.resetAndDestroy()
    await closed
  }
}

t.test('one of three targets dies under load: >= 99% success after it is ejected, and it is re-admitted when it recovers', async (t) => {
  const targets = [new Restartable('a'), new Restartable('b'), new Restartable('c')]
  for (const target of targets) await target.start()
  t.teardown(async () => { for (const target of targets) await target.stop() })
  const [, , victim] = targets as [Restartable, Restartable, Restartable]

  const app = Fastify()
  t.teardown(async () => { await app.close() })
  let retries = 0
  tollgateRuntime(app).events.on('upstreamRetry', () => { retries++ })
  await app.register(tollgateProxy, {
    upstreams: {
      pool: {
        targets: targets.map((target) => target.url),
        retries: 1,
        circuitBreaker: { failures: 3, resetAfter: '500ms' },
        healthCheck: { path: '/health', interval: '100ms', timeout: '500ms', unhealthyAfter: 1, healthyAfter: 1 }
      }
    },
    routes: [{ prefix: '/api', upstream: 'pool' }]
  })
  const base = await listen(app)
  const client = new Pool(base, { connections: 10 })
  t.teardown(async () => { await client.close() })

  const get = async (): Promise<{ status: number, body: string }> => {
    try {
      const response = await client.request({ path: '/api/item', method: 'GET' })
      return { status: response.statusCode, body: await response.body.text() }
    } catch {
      return { status: 0, body: '' }
    }
  }

  // 600 requests, 10 at a time; the victim dies once 200 have been sent.
  const TOTAL = 600
  const KILL_AT = 200
  const statuses: number[] = new Array<number>(TOTAL).fill(-1)
  let issued = 0
  let killed: Promise<void> | null = null
  const worker = async (): Promise<void> => {
    while (issued < TOTAL) {
      const i = issued++
      if (i === KILL_AT) killed = victim.stop()
      statuses[i] = (await get()).status
    }
  }
  await Promise.all(Array.from({ length: 10 }, worker))
  await killed
  const before = statuses.slice(0, KILL_AT)
  const after = statuses.slice(KILL_AT)
  t.equal(before.filter((status) => status === 200).length, KILL_AT, 'all served while the pool is whole')
  const served = after.filter((status) => status === 200).length
  t.ok(served / after.length >= 0.99, `${served}/${after.length} served after the target died`)
  t.ok(retries > 0, `requests that met the dead target were retried (${retries})`)
  t.ok(retries <= 30, `the dead target was ejected, not retried around ${Math.round(after.length / 3)} times (${retries} retries)`)
  const victimState = (): { healthy: boolean, circuit: string } => app.tollgateProxy.upstreams()[0]!.targets[2]!
  t.ok(await eventually(() => !victimState().healthy), 'the dead target is reported unhealthy')
  t.same((await app.tollgate.checkReadiness()).map((check) => check.ok), [true], 'the upstream stays ready on two targets')

  // The victim comes back on the same address: the health check re-admits it and it gets traffic again.
  await victim.start()
  t.ok(await eventually(() => victimState().healthy), 'the recovered target is healthy again')
  const hitsBefore = victim.hits
  const bodies: string[] = []
  for (let i = 0; i < 30; i++) {
    const response = await get()
    t.equal(response.status, 200)
    bodies.push(response.body)
  }
  t.ok(victim.hits - hitsBefore >= 5, `the recovered target serves again (${victim.hits - hitsBefore} of 30)`)
  t.ok(bodies.includes('c'))
  t.same(victimState(), { ...victimState(), healthy: true, circuit: 'closed' })
})
