import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createGateway, type Manifest } from '../../src/index.js'

/*
 * Test kit for the hardening suite: a gateway listening on 127.0.0.1, an upstream
 * that records every request it starts, finishes or loses, and a raw TCP client
 * that sends exact bytes and reads back whatever the gateway answers.
 */

export interface RunningGateway {
  app: FastifyInstance
  port: number
  base: string
  logs: Array<Record<string, unknown>>
}

/** createGateway + listen on 127.0.0.1:0, closed at teardown; log lines are collected. */
export async function startGateway (t: Test, manifest: Manifest): Promise<RunningGateway> {
  const logs: Array<Record<string, unknown>> = []
  const logStream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    }
  })
  const app = await createGateway(manifest, { logStream })
  t.teardown(async () => { await app.close() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, port, base: `http://127.0.0.1:${port}`, logs }
}

export interface UpstreamRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
  /** The request arrived whole (its body ended). */
  complete: boolean
  /** The connection went away before the body ended. */
  aborted: boolean
}

export interface RecordingUpstream {
  url: string
  port: number
  /** Every request whose headers arrived, in arrival order. */
  started: UpstreamRequest[]
  /** The requests that arrived whole. */
  readonly completed: UpstreamRequest[]
  server: Server
  close: () => Promise<void>
}

/**
 * An upstream on 127.0.0.1 that records each request from its headers on, and answers
 * a complete one with 200 and the JSON `{ method, url, bodyLength, served }`.
 */
export async function recordingUpstream (name = 'upstream'): Promise<RecordingUpstream> {
  const started: UpstreamRequest[] = []
  const server = createServer((request, response) => {
    const record: UpstreamRequest = {
      method: request.method ?? '',
      url: request.url ?? '',
      headers: request.headers,
      rawHeaders: request.rawHeaders,
      body: Buffer.alloc(0),
      complete: false,
      aborted: false
    }
    started.push(record)
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    request.on('error', () => { record.aborted = true })
    request.on('close', () => { if (!record.complete) record.aborted = true })
    request.on('end', () => {
      record.body = Buffer.concat(chunks)
      record.complete = true
      const body = JSON.stringify({ method: record.method, url: record.url, bodyLength: record.body.length, served: name })
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    started,
    get completed () { return started.filter((request) => request.complete) },
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

export interface ParsedResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * Splits the bytes a client received into HTTP/1.1 responses (Content-Length or
 * chunked bodies). A trailing incomplete response is left out.
 */
export function parseResponses (text: string, head = false): ParsedResponse[] {
  const out: ParsedResponse[] = []
  let at = 0
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at)
    if (end === -1) break
    const lines = text.slice(at, end).split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN)
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    let cursor = end + 4
    let body = ''
    if (head) {
      // The answer to HEAD has no body, whatever its Content-Length says.
    } else if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      let finished = false
      while (!finished) {
        const lineEnd = text.indexOf('\r\n', cursor)
        if (lineEnd === -1) return out
        const size = parseInt(text.slice(cursor, lineEnd), 16)
        if (Number.isNaN(size)) return out
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n\r\n', lineEnd)
          if (trailerEnd === -1) return out
          cursor = trailerEnd + 4
          finished = true
        } else {
          if (text.length < lineEnd + 2 + size + 2) return out
          body += text.slice(lineEnd + 2, lineEnd + 2 + size)
          cursor = lineEnd + 2 + size + 2
        }
      }
    } else {
      const length = Number(headers['content-length'] ?? 0)
      if (text.length < cursor + length) return out
      body = text.slice(cursor, cursor + length)
      cursor += length
    }
    out.push({ status, headers, body })
    at = cursor
  }
  return out
}

export interface Exchange {
  /** Everything the client received, as latin1 text. */
  text: string
  responses: ParsedResponse[]
  /** The gateway closed the connection (rather than the client giving up waiting). */
  closed: boolean
}

export interface ExchangeOptions {
  /** Resolve once this many whole responses arrived (the connection may stay open). */
  responses?: number
  /** Write one byte per tick of this many milliseconds (slow clients). */
  trickleMs?: number
  /** Give up waiting after this long; generous, it only bounds a broken test. */
  boundMs?: number
  /** The request is HEAD: responses have no body. */
  head?: boolean
}

/**
 * Sends `data` on a fresh TCP connection to 127.0.0.1:`port` and collects the answer
 * until the gateway closes the connection, or `responses` whole responses arrived,
 * or the bound passes (then `closed` is false). The socket is always destroyed.
 */
export async function exchange (port: number, data: string | Buffer, options: ExchangeOptions = {}): Promise<Exchange> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data
  const socket: Socket = connect(port, '127.0.0.1')
  let text = ''
  let trickle: NodeJS.Timeout | undefined
  const result = await new Promise<Exchange>((resolve) => {
    let settled = false
    const finish = (closed: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(bound)
      clearInterval(trickle)
      resolve({ text, responses: parseResponses(text, options.head), closed })
    }
    const bound = setTimeout(() => { finish(false) }, options.boundMs ?? 10_000)
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (options.responses !== undefined && parseResponses(text, options.head).length >= options.responses) finish(false)
    })
    socket.on('error', () => {})
    socket.on('close', () => { finish(true) })
    socket.on('connect', () => {
      if (options.trickleMs === undefined) {
        socket.write(bytes)
        return
      }
      let i = 0
      trickle = setInterval(() => {
        if (i >= bytes.length || socket.destroyed || !socket.writable) {
          clearInterval(trickle)
          return
        }
        socket.write(bytes.subarray(i, i + 1))
        i++
      }, options.trickleMs)
    })
  })
  socket.destroy()
  return result
}

/** Waits until `condition` holds, polling; fails after a generous bound. */
export async function eventually (condition: () => boolean, boundMs = 10_000): Promise<void> {
  const deadline = Date.now() + boundMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A manifest with one public route `/api` to `upstream`, rewritten to `/inner`. */
export function publicManifest (upstream: RecordingUpstream, server: NonNullable<Manifest['server']> = {}): Manifest {
  return {
    version: 1,
    server: { docs: false, ...server },
    upstreams: { main: { targets: [upstream.url] } },
    routes: [{ prefix: '/api', upstream: 'main', rewritePrefix: '/inner', auth: false }]
  }
}
