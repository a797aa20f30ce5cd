import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import tollgateMicroservices, { type MicroservicesOptions } from '../../src/index.js'

const SERVICE = fileURLToPath(new URL('../fixtures/service.mjs', import.meta.url))

export type TransportName = 'tcp' | 'redis' | 'nats'

/** A namespace for patterns, so tests sharing Redis or NATS never see each other's messages. */
export function namespace (): string {
  return `tg${randomBytes(4).toString('hex')}.`
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

export interface Service {
  readonly ns: string
  readonly port: number
  /** Kills the process (SIGKILL: no goodbye to connected clients). */
  kill: () => Promise<void>
  /** Starts it again with the same port and namespace. */
  start: () => Promise<void>
}

/** Starts the NestJS microservice of `fixtures/service.mjs` in a child process. */
export async function service (t: Test, transport: TransportName, options: { ns?: string, port?: number } = {}): Promise<Service> {
  const ns = options.ns ?? namespace()
  const port = options.port ?? (transport === 'tcp' ? await freePort() : 0)
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    const proc = child = spawn(process.execPath, [SERVICE], {
      env: { ...process.env, SERVICE: JSON.stringify({ transport, port, ns }) },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('service did not start within 30 s')) }, 30_000)
      let out = ''
      proc.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes('ready\n')) {
          clearTimeout(timer)
          resolve()
        }
      })
      proc.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`service exited with ${code}`))
      })
    })
  }
  const kill = async (): Promise<void> => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
    await new Promise<void>((resolve) => {
      proc.once('exit', () => { resolve() })
      proc.kill('SIGKILL')
    })
  }
  await start()
  t.teardown(kill)
  return { ns, port, kill, start }
}

/** A TCP relay in front of a port that counts the connections made through it. */
export async function countingRelay (t: Test, port: number): Promise<{ port: number, connections: () => number }> {
  let count = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    count++
    const upstream = connect(port, '127.0.0.1')
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const close = (): void => { client.destroy(); upstream.destroy() }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  return { port: (server.address() as AddressInfo).port, connections: () => count }
}

/** The target URL of a transport for a service. */
export function targetFor (transport: TransportName, svc: { port: number }): string {
  switch (transport) {
    case 'tcp': return `tcp://127.0.0.1:${svc.port}`
    case 'redis': return 'redis://127.0.0.1:6379'
    case 'nats': return 'nats://127.0.0.1:4222'
  }
}

export const TRANSPORT_OF = { tcp: 'nest-tcp', redis: 'nest-redis', nats: 'nest-nats' } as const

/** A Fastify app with the plugin registered, ready, closed at teardown. */
export async function gateway (t: Test, options: MicroservicesOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(tollgateMicroservices, options)
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}
