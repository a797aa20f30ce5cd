import { randomUUID } from 'node:crypto'
import { connect, createInbox, type NatsConnection, type Msg } from 'nats'
import type { ReadinessResult } from '@tollgate/common'
import { BadGatewayError, NoResponderError, PayloadTooLargeError, TimeoutError } from '../errors.js'
import { PendingCalls, targetLabel, type ReplyPacket } from '../protocol.js'
import { repliesFrom, withTarget, type SendResult, type TransportClient } from './types.js'

export interface NatsClientOptions {
  servers: readonly string[]
  connectTimeout: number
}

/**
 * Why a publish failed: a message over the server's `max_payload` is the request's fault
 * (413, no retry helps); anything else means nobody can take it now (503, Retry-After).
 */
function publishFailure (cause: unknown): Error {
  if ((cause as { code?: unknown } | null)?.code === 'MAX_PAYLOAD_EXCEEDED') return new PayloadTooLargeError({ cause: cause as Error })
  return new NoResponderError({ cause: cause as Error })
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/**
 * NestJS NATS transport client: requests are published on the pattern's subject with a
 * reply subject under this client's own inbox (one wildcard subscription for all of
 * them, so no subscription per request); replies are matched by id. The server answers
 * "no responders" (status 503) at once when nobody subscribes to the subject. nats.js
 * reconnects and restores the subscription on its own.
 */
export class NatsClient implements TransportClient {
  readonly #servers: string[]
  readonly #label: string
  readonly #connectTimeout: number
  readonly #pending = new PendingCalls()
  readonly #inbox = createInbox('_INBOX_TOLLGATE')
  #connection: Promise<NatsConnection> | undefined
  #nc: NatsConnection | undefined
  #closed = false

  constructor (options: NatsClientOptions) {
    this.#servers = [...options.servers]
    this.#label = targetLabel(options.servers[0]!)
    this.#connectTimeout = options.connectTimeout
  }

  #connect (): Promise<NatsConnection> {
    if (this.#connection !== undefined) return this.#connection
    const connection = connect({
      servers: this.#servers,
      name: 'tollgate',
      timeout: this.#connectTimeout,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 30_000
    }).then((nc) => {
      this.#nc = nc
      nc.subscribe(`${this.#inbox}.*`, { callback: (error, msg) => { if (error === null) this.#reply(msg) } })
      nc.closed().then(() => {
        if (this.#nc === nc) {
          this.#nc = undefined
          this.#connection = undefined
        }
      }, () => {})
      if (this.#closed) void nc.close()
      return nc
    })
    // A failed first connection is retried on the next call.
    connection.catch(() => { if (this.#connection === connection) this.#connection = undefined })
    this.#connection = connection
    return connection
  }

  #reply (msg: Msg): void {
    const id = msg.subject.slice(this.#inbox.length + 1)
    if (msg.headers?.code === 503 || msg.data.length === 0) {
      this.#pending.fail(id, withTarget(new NoResponderError({ cause: new Error('no responders') }), this.#label))
      return
    }
    let packet: ReplyPacket
    try {
      packet = JSON.parse(decoder.decode(msg.data)) as ReplyPacket
    } catch (cause) {
      this.#pending.fail(id, withTarget(new BadGatewayError({ cause: cause as Error }), this.#label))
      return
    }
    // NestJS puts the id in the reply too; the reply subject already names the call.
    this.#pending.settle({ ...packet, id })
  }

  async #ready (timeoutMs: number): Promise<NatsConnection> {
    if (this.#nc !== undefined && !this.#nc.isClosed()) return this.#nc
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        this.#connect(),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('not connected to NATS')) }, Math.min(timeoutMs, this.#connectTimeout)) })
      ])
    } catch (cause) {
      throw withTarget(new NoResponderError({ cause: cause as Error }), this.#label)
    } finally {
      clearTimeout(timer)
    }
  }

  async send (route: string, data: unknown, timeoutMs: number): Promise<SendResult> {
    const nc = await this.#ready(timeoutMs)
    const id = randomUUID()
    const result = this.#pending.add(id, timeoutMs, () => withTarget(new TimeoutError(), this.#label))
    try {
      nc.publish(route, encoder.encode(JSON.stringify({ pattern: route, data, id })), { reply: `${this.#inbox}.${id}` })
    } catch (cause) {
      this.#pending.fail(id, withTarget(publishFailure(cause), this.#label))
    }
    return { ...(await repliesFrom(result, this.#label)), target: this.#label }
  }

  async emit (route: string, data: unknown, timeoutMs: number): Promise<string> {
    const nc = await this.#ready(timeoutMs)
    let timer: NodeJS.Timeout | undefined
    try {
      nc.publish(route, encoder.encode(JSON.stringify({ pattern: route, data })))
      // Taken by the transport: the server has it once a flush round-trip returns.
      await Promise.race([nc.flush(), new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(withTarget(new TimeoutError(), this.#label)) }, timeoutMs) })])
    } catch (error) {
      if (error instanceof TimeoutError) throw error
      throw withTarget(publishFailure(error), this.#label)
    } finally {
      clearTimeout(timer)
    }
    return this.#label
  }

  async readiness (): Promise<ReadinessResult> {
    try {
      const nc = await this.#ready(this.#connectTimeout)
      await nc.flush()
      return { ok: true }
    } catch {
      return { ok: false, message: 'NATS is not connected' }
    }
  }

  start (): void {
    this.#connect().catch(() => {})
  }

  async close (): Promise<void> {
    this.#closed = true
    const nc = this.#nc
    this.#nc = undefined
    this.#connection = undefined
    if (nc !== undefined && !nc.isClosed()) await nc.close()
  }
}
