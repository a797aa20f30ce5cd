import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { readFileSync } from 'node:fs'
import type { ChildProcess } from 'node:child_process'
import { io, type Socket } from 'socket.io-client'

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  text: string
  /** The parsed body when it is JSON, else undefined. */
  json: unknown
}

export interface Call {
  method?: string
  headers?: Record<string, string>
  body?: unknown
  /**
   * Local address to connect from (any of 127.0.0.0/8 on Linux), so that each simulated
   * client has its own IP for the gateway's per-IP limits. Traffic still goes to 127.0.0.1.
   */
  from?: string
}

/** One HTTP request, no keep-alive, no redirects, a bounded wait. */
export function call (base: string, path: string, options: Call = {}): Promise<Answer> {
  const url = new URL(path, base)
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body))
  const headers: Record<string, string> = { ...options.headers }
  if (payload !== undefined) {
    headers['content-type'] ??= 'application/json'
    headers['content-length'] = String(payload.length)
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: options.method ?? 'GET',
      headers,
      agent: false,
      localAddress: options.from,
      timeout: 15_000
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown
        if (/application\/json/.test(res.headers['content-type'] ?? '') && text !== '') json = JSON.parse(text)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${path}: no answer within 15s`)))
    req.on('error', reject)
    req.end(payload)
  })
}

/**
 * A raw WebSocket upgrade request. Resolves with the HTTP answer when the gateway refuses it;
 * a `101` resolves too (status 101), with the socket closed at once.
 */
export function upgrade (base: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const url = new URL(path, base)
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      agent: false,
      timeout: 15_000,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers
      }
    })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: '', json: undefined })
    })
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const json: unknown = /application\/json/.test(res.headers['content-type'] ?? '') && text !== '' ? JSON.parse(text) : undefined
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`upgrade ${path}: no answer within 15s`)))
    req.on('error', reject)
    req.end()
  })
}

/** A socket.io client through the gateway, as a Node client does it: websocket only, token in a header. */
export function chatClient (base: string, headers: Record<string, string>): Socket {
  return io(base, {
    path: '/api/meetings/socket.io',
    transports: ['websocket'],
    extraHeaders: headers,
    reconnection: false,
    forceNew: true,
    timeout: 10_000
  })
}

/** Resolves once the socket connected; rejects with the connect error otherwise. */
export function connected (socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', (error) => reject(error))
  })
}

/** The next `event` on the socket that satisfies `accept`; rejects after `ms` (a bound, not a measurement). */
export function nextEvent<T> (socket: Socket, event: string, accept: (payload: T) => boolean = () => true, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener)
      reject(new Error(`no ${event} event within ${ms / 1000}s`))
    }, ms)
    function listener (payload: T): void {
      if (!accept(payload)) return
      clearTimeout(timer)
      socket.off(event, listener)
      resolve(payload)
    }
    socket.on(event, listener)
  })
}

/** The process ids of `pid`'s children (Linux /proc), recorded so they can be killed even if their parent is. */
export function childPids (pid: number): number[] {
  try {
    const tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    return tasks.split(/\s+/).filter((word) => word !== '').map(Number)
  } catch {
    return []
  }
}

/**
 * Stops a starter the way a user does (SIGTERM: it stops its children and exits 0), and
 * makes sure nothing survives: if it does not exit within `grace` ms, it and every child
 * it had when the stop began are SIGKILLed. Resolves with the starter's exit code (null when killed).
 */
export async function stopStarter (child: ChildProcess, exit: Promise<number | null>, grace = 30_000): Promise<number | null> {
  if (child.pid === undefined) return null
  const children = childPids(child.pid)
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([exit, new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), grace) })])
  clearTimeout(timer)
  if (code !== 'timeout') return code // it stopped (and waited for) every child itself
  child.kill('SIGKILL')
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  return null
}
