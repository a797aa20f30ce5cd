import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import tollgateProxy, { type ProxyOptions } from '../../src/index.js'
import type { WebSocketServer } from 'ws'

type Test = { teardown: (fn: () => unknown) => void }

export interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  body: Buffer
  /** true when the request body ended normally, false when the client aborted it. */
  complete: boolean
  /** true once the connection of this request closed before a response was finished. */
  aborted: boolean
}

export interface Upstream {
  url: string
  port: number
  server: Server
  seen: Seen[]
  /** Requests received (counted on arrival, before the body). */
  hits: number
  close: () => Promise<void>
}

/** A node:http upstream on 127.0.0.1. The handler decides; every request is recorded. */
export async function upstream (t: Test, handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void = echo): Promise<Upstream> {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  const state = { hits: 0 }
  const server = createServer((req, res) => {
    state.hits++
    const chunks: Buffer[] = []
    const record: Seen = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), complete: false, aborted: false }
    seen.push(record)
    res.on('close', () => { if (!res.writableFinished) record.aborted = true })
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('error', () => {})
    req.on('end', () => {
      record.body = Buffer.concat(chunks)
      record.complete = true
      handler(req, res, record.body)
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  }
  t.teardown(close)
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    get hits () { return state.hits },
    close
  }
}

/** Answers with a JSON description of the request it got. */
export function echo (req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const payload = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, length: body.length })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) })
  res.end(payload)
}

/** A raw TCP upstream: each connection is handed to `onSocket` (garbage, resets, hangs). */
export async function rawUpstream (t: Test, onSocket: (socket: Socket, request: string) => void): Promise<{ url: string, connections: () => number }> {
  const sockets = new Set<Socket>()
  let connections = 0
  const server = createNetServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = ''
    let handed = false
    socket.on('data', (chunk) => {
      if (handed) return
      buffered += chunk.toString('latin1')
      if (buffered.includes('\r\n\r\n')) {
        handed = true
        onSocket(socket, buffered)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  return { url: `http://127.0.0.1:${port}`, connections: () => connections }
}

/** A URL on 127.0.0.1 where nothing listens (connection refused). */
export async function closedPort (): Promise<string> {
  const server = createNetServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return `http://127.0.0.1:${port}`
}

/** A Fastify app with the proxy registered, closed on teardown. */
export async function gateway (t: Test, options: ProxyOptions, serverOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(serverOptions)
  await app.register(tollgateProxy, { healthChecks: false, ...options })
  t.teardown(async () => { await app.close() })
  await app.ready()
  return app
}

/** Listens on 127.0.0.1 and returns the base URL. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** Sends `head` (a raw request, `Connection: close` added) over TCP and returns the status and raw response. */
export async function rawRequest (base: string, head: string, body = ''): Promise<{ status: number, raw: string }> {
  const { port } = new URL(base)
  const { connect } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1')
    const chunks: Buffer[] = []
    socket.setTimeout(10_000, () => { socket.destroy(new Error('raw request timed out')) })
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('latin1')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0)
      resolve({ status, raw })
    })
    socket.write(head.replace(/\r\n$/, '') + '\r\nconnection: close\r\n\r\n' + body)
  })
}

/** Waits (bounded: `tries` x 10 ms) until `condition()` holds; returns whether it did. */
export async function eventually (condition: () => boolean, tries = 300): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (condition()) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return condition()
}

/** Listens `server` (carrying the WebSocket server `wss`) on 127.0.0.1; both are closed at teardown. Resolves with its URL. */
export async function listenWebSockets (t: Test, server: Server, wss: WebSocketServer): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise<void>((resolve) => { wss.close(() => { resolve() }) })
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
