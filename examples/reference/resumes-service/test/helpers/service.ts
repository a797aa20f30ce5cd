import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { connect, createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import 'reflect-metadata'
import { ClientTCP } from '@nestjs/microservices'
import { lastValueFrom, timeout } from 'rxjs'
import type { Test } from 'tap'

export const serviceDir = fileURLToPath(new URL('../../', import.meta.url))
const mainJs = `${serviceDir}dist/main.js`

let built = false
/**
 * The service runs compiled, as in the deployment (tsc with this package's decorator
 * settings): build it once per test process. `tsc -b` is incremental, so an up-to-date
 * build costs little, and a stale one is never tested.
 */
export function ensureBuilt (): void {
  if (built) return
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-b', serviceDir], { stdio: 'inherit' })
  built = true
}

/** A port free right now (the OS picks it). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

function acceptsConnections (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

export interface Service {
  port: number
  child: ChildProcess
  exit: Promise<number | null>
  output: () => string
  /** A NestJS TCP client connected to the service, closed at teardown. */
  client: ClientTCP
}

/**
 * Starts `dist/main.js` on a free 127.0.0.1 port and waits (at most `ms`) until it accepts
 * connections. At teardown the client is closed and the service gets SIGTERM, then SIGKILL
 * if it has not exited within 10 s.
 */
export async function startService (t: Test, env: Record<string, string> = {}, ms = 20_000): Promise<Service> {
  ensureBuilt()
  const port = await freePort()
  const child = spawn(process.execPath, [mainJs], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let text = ''
  child.stdout.on('data', (chunk: Buffer) => { text += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { text += chunk.toString() })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const client = new ClientTCP({ host: '127.0.0.1', port })
  t.teardown(async () => {
    client.close()
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exit
    clearTimeout(killer)
  })
  let exited = false
  void exit.then(() => { exited = true })
  const until = Date.now() + ms
  while (!(await acceptsConnections(port))) {
    if (exited) throw new Error(`the service exited before listening:\n${text}`)
    if (Date.now() > until) throw new Error(`the service did not listen on ${port} within ${ms / 1000}s:\n${text}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await client.connect()
  return { port, child, exit, output: () => text, client }
}

/** A message pattern's reply (`undefined` when the handler answered nothing); rejects with the service's error object. */
export async function send<T = unknown> (client: ClientTCP, pattern: object, data: unknown): Promise<T> {
  return await lastValueFrom(client.send<T>(pattern, data).pipe(timeout(5000)), { defaultValue: undefined as T })
}

/** The error object a pattern answered with (`{ statusCode, message }` for an RpcException); throws when it succeeded. */
export async function failure (client: ClientTCP, pattern: object, data: unknown): Promise<unknown> {
  try {
    await send(client, pattern, data)
  } catch (error) {
    return error
  }
  throw new Error(`${JSON.stringify(pattern)} succeeded; a failure was expected`)
}

/** Emits an event; resolves once the client has written it. */
export async function emit (client: ClientTCP, pattern: object, data: unknown): Promise<void> {
  await lastValueFrom(client.emit(pattern, data).pipe(timeout(5000)), { defaultValue: undefined })
}

/** The gateway's `data: envelope` for a call by `caller` (`null`: anonymous). */
export function envelope (caller: string | null, parts: { params?: Record<string, string>, query?: Record<string, string>, body?: unknown } = {}): unknown {
  return {
    params: parts.params ?? {},
    query: parts.query ?? {},
    body: parts.body ?? null,
    identity: caller === null ? null : { id: caller, method: 'jwt', roles: ['user'], permissions: [], claims: { sub: caller } },
    requestId: `req-${Math.random().toString(36).slice(2)}`
  }
}
