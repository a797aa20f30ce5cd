import { randomUUID } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import type { ReadinessResult } from '@tollgate/common'
import { BadGatewayError, NoResponderError, TimeoutError } from '../errors.js'
import { PendingCalls, type ReplyPacket, type OutgoingPacket } from '../protocol.js'
import { repliesFrom, withTarget, type SendResult, type TransportClient } from './types.js'

/** Longest reply frame accepted, in UTF-16 code units (what the length prefix counts). */
export const MAX_FRAME_LENGTH = 64 * 1024 * 1024

/** `<length>#<json>`, the length counting UTF-16 code units (JavaScript string length), not bytes. */
export function frame (packet: OutgoingPacket): string {
  const json = JSON.stringify(packet)
  return `${json.length}#${json}`
}

/**
 * Splits a stream of frames. Bytes are decoded as UTF-8 first (a character cut between
 * two chunks is kept for the next one), then lengths are counted in code units.
 */
export class FrameReader {
  readonly #decoder = new StringDecoder('utf8')
  #buffer = ''
  #length: number | null = null

  constructor (readonly maxLength = MAX_FRAME_LENGTH) {}

  /** Returns the complete frames of this chunk; throws on a corrupt or oversized frame. */
  push (chunk: Buffer): string[] {
    this.#buffer += this.#decoder.write(chunk)
    const frames: string[] = []
    for (;;) {
      if (this.#length === null) {
        const hash = this.#buffer.indexOf('#')
        if (hash === -1) {
          if (this.#buffer.length > 20) throw new Error('corrupt frame: no length prefix')
          break
        }
        const raw = this.#buffer.slice(0, hash)
        if (!/^\d{1,15}$/.test(raw)) throw new Error('corrupt frame: bad length prefix')
        this.#length = Number(raw)
        if (this.#length > this.maxLength) throw new Error(`frame of ${this.#length} code units is over the limit`)
        this.#buffer = this.#buffer.slice(hash + 1)
      }
      if (this.#buffer.length < this.#length) break
      frames.push(this.#buffer.slice(0, this.#length))
      this.#buffer = this.#buffer.slice(this.#length)
      this.#length = null
    }
    return frames
  }
}

interface TcpTarget {
  readonly label: string
  readonly host: string
  readonly port: number
}

/** One multiplexed connection to a target: every request on it is matched to its reply by id. */
class Connection {
  readonly socket: Socket
  readonly ready: Promise<void>
  open = false
  closed = false

  constructor (readonly target: TcpTarget, connectTimeout: number, pending: PendingCalls, onClose: (connection: Connection) => void) {
    const reader = new FrameReader()
    const socket = this.socket = connect({ host: target.host, port: target.port, noDelay: true })
    socket.setKeepAlive(true, 10_000)
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = Object.assign(new Error(`connect timed out after ${connectTimeout} ms`), { code: 'ETIMEDOUT' })
        socket.destroy(error)
      }, connectTimeout)
      socket.once('connect', () => {
        clearTimeout(timer)
        this.open = true
        resolve()
      })
      socket.once('close', () => {
        clearTimeout(timer)
        this.closed = true
        this.open = false
        onClose(this)
        // Calls in flight on this connection cannot get their replies any more.
        pending.failAll(() => withTarget(new BadGatewayError({ cause: new Error('connection closed before the reply') }), target.label), this)
        reject(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' }))
      })
    })
    this.ready.catch(() => {})
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // 'close' follows; remember why for the connect promise's rejection.
      this.lastError = error
    })
    socket.on('data', (chunk: Buffer) => {
      let frames: string[]
      try {
        frames = reader.push(chunk)
      } catch (error) {
        socket.destroy(error as Error)
        return
      }
      for (const text of frames) {
        let packet: ReplyPacket
        try {
          packet = JSON.parse(text) as ReplyPacket
        } catch (error) {
          socket.destroy(error as Error)
          return
        }
        pending.settle(packet)
      }
    })
  }

  lastError: NodeJS.ErrnoException | undefined

  write (text: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.socket.write(text, 'utf8', (error) => { if (error == null) resolve(); else reject(error) })
    })
  }
}

export interface TcpClientOptions {
  targets: readonly string[]
  connectTimeout: number
}

/**
 * NestJS TCP transport client: one connection per target, opened on first use and
 * reopened after it closes (a restarted service is reached again without a gateway
 * restart); requests go round-robin over the targets. A target that refuses the
 * connection is skipped for the next one (nothing was sent, so this is always safe).
 */
export class TcpClient implements TransportClient {
  readonly #targets: TcpTarget[]
  readonly #connectTimeout: number
  readonly #pending = new PendingCalls()
  readonly #connections = new Map<TcpTarget, Connection>()
  #next = 0
  #closed = false

  constructor (options: TcpClientOptions) {
    this.#targets = options.targets.map((raw) => {
      const url = new URL(raw)
      return { label: `tcp://${url.host}`, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) }
    })
    this.#connectTimeout = options.connectTimeout
  }

  async #connection (target: TcpTarget): Promise<Connection> {
    let connection = this.#connections.get(target)
    if (connection === undefined || connection.closed) {
      connection = new Connection(target, this.#connectTimeout, this.#pending, (closed) => {
        if (this.#connections.get(target) === closed) this.#connections.delete(target)
      })
      this.#connections.set(target, connection)
    }
    try {
      await connection.ready
    } catch {
      const cause = connection.lastError ?? new Error('connection closed')
      throw withTarget(new NoResponderError({ cause }), target.label)
    }
    return connection
  }

  /** A connected target, trying each once from the next in turn. */
  async #pick (): Promise<Connection> {
    if (this.#closed) throw new NoResponderError()
    const start = this.#next
    this.#next = (this.#next + 1) % this.#targets.length
    let last: Error | undefined
    for (let i = 0; i < this.#targets.length; i++) {
      const target = this.#targets[(start + i) % this.#targets.length]!
      try {
        return await this.#connection(target)
      } catch (error) {
        last = error as Error
      }
    }
    throw last!
  }

  async send (route: string, data: unknown, timeoutMs: number): Promise<SendResult> {
    const connection = await this.#pick()
    const label = connection.target.label
    const id = randomUUID()
    const result = this.#pending.add(id, timeoutMs, () => withTarget(new TimeoutError(), label), connection)
    // A write that fails means the connection broke after it was open: the service may
    // have seen the request, so this is a 502, not a 503.
    connection.write(frame({ pattern: route, data, id })).catch((cause: Error) => {
      this.#pending.fail(id, withTarget(new BadGatewayError({ cause }), label))
    })
    return { ...(await repliesFrom(result, label)), target: label }
  }

  async emit (route: string, data: unknown, timeoutMs: number): Promise<string> {
    const connection = await this.#pick()
    const label = connection.target.label
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        connection.write(frame({ pattern: route, data })),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(withTarget(new TimeoutError(), label)) }, timeoutMs) })
      ])
    } catch (error) {
      if (error instanceof TimeoutError) throw error
      throw withTarget(new NoResponderError({ cause: error as Error }), label)
    } finally {
      clearTimeout(timer)
    }
    return label
  }

  async readiness (): Promise<ReadinessResult> {
    const results = await Promise.allSettled(this.#targets.map(async (target) => await this.#connection(target)))
    return results.some((result) => result.status === 'fulfilled') ? { ok: true } : { ok: false, message: 'no target accepts connections' }
  }

  start (): void {
    for (const target of this.#targets) this.#connection(target).catch(() => {})
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const connection of this.#connections.values()) connection.socket.destroy()
    this.#connections.clear()
  }
}
