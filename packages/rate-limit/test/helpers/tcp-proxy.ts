import { once } from 'node:events'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/**
 * A real TCP proxy in front of a server, to take it away mid-run: `stop()` closes the
 * listener and destroys every connection (Redis "down"), `blackhole()` keeps connections open
 * but stops forwarding (Redis "hung"), `start()` listens again on the same port (recovery).
 */
export class TcpProxy {
  readonly #target: { host: string, port: number }
  readonly #sockets = new Set<net.Socket>()
  #server: net.Server | null = null
  #blackholed = false
  port = 0

  constructor (targetPort: number, targetHost = '127.0.0.1') {
    this.#target = { host: targetHost, port: targetPort }
  }

  async start (): Promise<void> {
    this.#blackholed = false
    const server = net.createServer((client) => {
      const upstream = net.connect(this.#target.port, this.#target.host)
      this.#sockets.add(client)
      this.#sockets.add(upstream)
      client.on('data', (chunk) => { if (!this.#blackholed) upstream.write(chunk) })
      upstream.on('data', (chunk) => { if (!this.#blackholed) client.write(chunk) })
      const end = (): void => {
        client.destroy()
        upstream.destroy()
        this.#sockets.delete(client)
        this.#sockets.delete(upstream)
      }
      client.on('close', end).on('error', end)
      upstream.on('close', end).on('error', end)
    })
    server.listen(this.port, '127.0.0.1')
    await once(server, 'listening')
    this.port = (server.address() as AddressInfo).port
    this.#server = server
  }

  /** Forwarding stops; connections stay open (every command hangs). */
  blackhole (): void {
    this.#blackholed = true
  }

  async stop (): Promise<void> {
    const server = this.#server
    this.#server = null
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    if (server !== null) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }
}

export async function startProxy (t: Test, targetPort = 6379): Promise<TcpProxy> {
  const proxy = new TcpProxy(targetPort)
  await proxy.start()
  t.teardown(() => proxy.stop())
  return proxy
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export async function closedPort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

/** Polls `check` every 20 ms until it is true: at most `attempts` times (bounded in count and time). */
export async function eventually (check: () => Promise<boolean> | boolean, attempts = 250): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return false
}
