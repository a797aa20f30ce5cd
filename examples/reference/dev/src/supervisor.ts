import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'

/** How the supervisor knows a service is ready: exactly one of these. */
export type Readiness =
  /** Polled until it answers 2xx. */
  | { readyUrl: string, readyTcp?: undefined }
  /** Polled until it accepts a TCP connection: for a service without HTTP (a NestJS TCP microservice). */
  | { readyTcp: { host: string, port: number }, readyUrl?: undefined }

export type ServiceSpec = Readiness & {
  name: string
  args: string[]
  env: NodeJS.ProcessEnv
  cwd?: string
}

async function answers2xx (url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) })
    await response.body?.cancel()
    return response.ok
  } catch {
    return false // not listening yet
  }
}

/** Resolves whether something accepts TCP connections on `host:port` (within a second). */
export function acceptsConnections (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** The probe of a spec, and what to call it in messages. */
function probeOf (spec: ServiceSpec): { where: string, ready: () => Promise<boolean> } {
  if (spec.readyTcp === undefined) return { where: spec.readyUrl, ready: () => answers2xx(spec.readyUrl) }
  const { host, port } = spec.readyTcp
  return { where: `tcp://${host}:${port}`, ready: () => acceptsConnections(host, port) }
}

interface Running { spec: ServiceSpec, child: ChildProcess, exited: Promise<number | null> }

/** Starts child processes, prefixes their output, waits for readiness, stops them all. */
export class Supervisor {
  private readonly running: Running[] = []
  private stopping = false
  /** Resolves when any child exits while the supervisor is not stopping. */
  readonly unexpectedExit: Promise<{ name: string, code: number | null }>
  private reportExit: (exit: { name: string, code: number | null }) => void = () => {}

  constructor (private readonly out: NodeJS.WritableStream = process.stdout) {
    this.unexpectedExit = new Promise((resolve) => { this.reportExit = resolve })
  }

  start (spec: ServiceSpec): void {
    const child = spawn(process.execPath, spec.args, { env: spec.env, cwd: spec.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    const prefix = `[${spec.name}] `
    for (const stream of [child.stdout, child.stderr]) {
      if (stream !== null) createInterface({ input: stream }).on('line', (line) => this.out.write(prefix + line + '\n'))
    }
    const exited = new Promise<number | null>((resolve) => {
      child.once('error', (error) => {
        this.out.write(`${prefix}could not start: ${error.message}\n`)
        resolve(null)
      })
      child.once('exit', (code, signal) => {
        if (!this.stopping) this.reportExit({ name: spec.name, code: code ?? (signal === null ? null : 128) })
        resolve(code)
      })
    })
    this.running.push({ spec, child, exited })
  }

  /** Polls every child's readiness (URL or TCP port); rejects when `deadline` (ms) passes or a child exits first. */
  async waitReady (deadline: number): Promise<void> {
    const until = Date.now() + deadline
    const failed = this.unexpectedExit.then(({ name, code }) => { throw new Error(`${name} exited (code ${String(code)}) before it was ready`) })
    failed.catch(() => {}) // a child exiting after readiness is reported through unexpectedExit, not here
    const ready = Promise.all(this.running.map(async ({ spec }) => {
      const probe = probeOf(spec)
      for (;;) {
        if (await probe.ready()) return
        if (Date.now() > until || this.stopping) throw new Error(`${spec.name} did not become ready at ${probe.where} within ${deadline / 1000}s`)
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }))
    await Promise.race([ready, failed])
  }

  /** SIGTERM to every child, newest first (the gateway before the services); SIGKILL after `grace` ms. */
  async stop (grace = 15_000): Promise<void> {
    this.stopping = true
    for (const { child, exited } of [...this.running].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue
      child.kill('SIGTERM')
      let timer: NodeJS.Timeout | undefined
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL')
          resolve()
        }, grace)
      })
      await Promise.race([exited, killed])
      clearTimeout(timer)
      await exited
    }
  }
}
