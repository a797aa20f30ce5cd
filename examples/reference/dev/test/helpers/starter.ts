import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { acceptsConnections as acceptsConnectionsAt } from '../../src/supervisor.js'

export const devDir = fileURLToPath(new URL('../../', import.meta.url))
export const mainJs = `${devDir}dist/main.js`

/** The starter runs compiled: build it (and, by reference, the services) when it is not. */
export function ensureBuilt (): void {
  const services = ['auth-service', 'posts-service', 'chat-service', 'resumes-service'].map((name) => `${devDir}../${name}/dist/main.js`)
  if (existsSync(mainJs) && services.every((file) => existsSync(file))) return
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-b', devDir], { stdio: 'inherit' })
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` (within a second). */
export async function acceptsConnections (port: number): Promise<boolean> {
  return await acceptsConnectionsAt('127.0.0.1', port)
}

/** Ports free right now (the OS picks them), distinct from each other. */
export async function freePorts (count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })))
  const ports = servers.map((server) => (server.address() as { port: number }).port)
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

export interface Started {
  child: ChildProcess
  output: () => string
  exit: Promise<number | null>
  /** Resolves once the starter printed READY; rejects if it exits first or after `ms`. */
  ready: (ms: number) => Promise<void>
}

export function runStarter (args: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, [mainJs, ...args], { cwd: devDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout.on('data', (chunk: Buffer) => { text += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { text += chunk.toString() })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ready = (ms: number): Promise<void> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll)
      reject(new Error(`the starter did not print READY within ${ms / 1000}s:\n${text}`))
    }, ms)
    const poll = setInterval(() => {
      if (/^READY$/m.test(text)) {
        clearInterval(poll)
        clearTimeout(timer)
        resolve()
      }
    }, 100)
    void exit.then((code) => {
      clearInterval(poll)
      clearTimeout(timer)
      reject(new Error(`the starter exited (${String(code)}) before READY:\n${text}`))
    })
  })
  return { child, output: () => text, exit, ready }
}
