import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import type { ReadinessResult } from '@tollgate/common'
import { NoResponderError, TimeoutError } from '../errors.js'
import { PendingCalls, targetLabel, type ReplyPacket } from '../protocol.js'
import { repliesFrom, withTarget, type SendResult, type TransportClient } from './types.js'

export interface RedisClientOptions {
  url: string
  connectTimeout: number
  /** Request channels of this upstream's routes: readiness checks that each has a subscriber. */
  channels: readonly string[]
}

async function bounded<T> (promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(onTimeout()) }, timeoutMs) })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * NestJS Redis transport client: requests are PUBLISHed on the pattern's channel and
 * answered on `<channel>.reply`, which every client of that pattern shares, so replies
 * are matched by id and the others ignored. Two connections (one subscribed, one for
 * commands); ioredis reconnects and resubscribes on its own. A PUBLISH that reaches no
 * subscriber fails at once with 503 instead of waiting for the timeout.
 */
export class RedisClient implements TransportClient {
  readonly #label: string
  readonly #pub: Redis
  readonly #sub: Redis
  readonly #pending = new PendingCalls()
  readonly #subscribed = new Map<string, Promise<void>>()
  readonly #channels: readonly string[]
  readonly #connectTimeout: number

  constructor (options: RedisClientOptions) {
    this.#label = targetLabel(options.url)
    this.#channels = options.channels
    this.#connectTimeout = options.connectTimeout
    const settings = {
      lazyConnect: true,
      connectTimeout: options.connectTimeout,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(times * 200, 2000)
    }
    // Commands fail at once while Redis is away (503) rather than queue behind a reconnection.
    this.#pub = new Redis(options.url, { ...settings, enableOfflineQueue: false })
    this.#sub = new Redis(options.url, { ...settings, enableOfflineQueue: true, autoResubscribe: true })
    const ignore = (): void => {}
    this.#pub.on('error', ignore)
    this.#sub.on('error', ignore)
    this.#sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      let packet: ReplyPacket
      try {
        packet = JSON.parse(message.toString('utf8')) as ReplyPacket
      } catch {
        return
      }
      this.#pending.settle(packet)
    })
  }

  #connect (): void {
    for (const client of [this.#pub, this.#sub]) {
      if (client.status === 'wait') client.connect().catch(() => {})
    }
  }

  /** Both connections up, waiting at most `connectTimeout` (and `timeoutMs`) for them; else 503. */
  async #ready (timeoutMs: number): Promise<void> {
    this.#connect()
    const waiting = [this.#pub, this.#sub].filter((client) => client.status !== 'ready')
    if (waiting.length === 0) return
    const signal = AbortSignal.timeout(Math.max(1, Math.min(timeoutMs, this.#connectTimeout)))
    try {
      // Rejects on the first connection error too: Redis away answers 503 at once.
      await Promise.all(waiting.map(async (client) => await once(client, 'ready', { signal })))
    } catch (cause) {
      throw withTarget(new NoResponderError({ cause: cause as Error }), this.#label)
    }
  }

  /** Subscribes to a reply channel once; every later request on it publishes at once. */
  async #replies (channel: string, timeoutMs: number): Promise<void> {
    let subscribed = this.#subscribed.get(channel)
    if (subscribed === undefined) {
      subscribed = this.#sub.subscribe(channel).then(() => {}, (cause: Error) => {
        throw withTarget(new NoResponderError({ cause }), this.#label)
      })
      subscribed.catch(() => { this.#subscribed.delete(channel) })
      this.#subscribed.set(channel, subscribed)
    }
    await bounded(subscribed, timeoutMs, () => withTarget(new NoResponderError({ cause: new Error('could not subscribe to the reply channel in time') }), this.#label))
  }

  async #publish (channel: string, text: string): Promise<number> {
    this.#connect()
    try {
      return await this.#pub.publish(channel, text)
    } catch (cause) {
      throw withTarget(new NoResponderError({ cause: cause as Error }), this.#label)
    }
  }

  async send (route: string, data: unknown, timeoutMs: number): Promise<SendResult> {
    const started = Date.now()
    await this.#ready(timeoutMs)
    await this.#replies(`${route}.reply`, timeoutMs)
    const id = randomUUID()
    const result = this.#pending.add(id, Math.max(1, timeoutMs - (Date.now() - started)), () => withTarget(new TimeoutError(), this.#label))
    let receivers: number
    try {
      receivers = await this.#publish(route, JSON.stringify({ pattern: route, data, id }))
    } catch (error) {
      this.#pending.fail(id, error as Error)
      return { ...(await repliesFrom(result, this.#label)), target: this.#label }
    }
    if (receivers === 0) this.#pending.fail(id, withTarget(new NoResponderError({ cause: new Error(`no subscriber on ${route}`) }), this.#label))
    return { ...(await repliesFrom(result, this.#label)), target: this.#label }
  }

  async emit (route: string, data: unknown, timeoutMs: number): Promise<string> {
    await this.#ready(timeoutMs)
    const receivers = await bounded(this.#publish(route, JSON.stringify({ pattern: route, data })), timeoutMs, () => withTarget(new TimeoutError(), this.#label))
    if (receivers === 0) throw withTarget(new NoResponderError({ cause: new Error(`no subscriber on ${route}`) }), this.#label)
    return this.#label
  }

  async readiness (): Promise<ReadinessResult> {
    try {
      await this.#ready(this.#connectTimeout)
    } catch {
      return { ok: false, message: 'Redis is not connected' }
    }
    if (this.#channels.length === 0) return { ok: true }
    const counts = await this.#pub.pubsub('NUMSUB', ...this.#channels) as Array<string | number>
    const missing: string[] = []
    for (let i = 0; i < counts.length; i += 2) {
      if (Number(counts[i + 1]) === 0) missing.push(String(counts[i]))
    }
    return missing.length === 0 ? { ok: true } : { ok: false, message: `no subscriber on ${missing.map((c) => JSON.stringify(c)).join(', ')}` }
  }

  start (): void {
    this.#connect()
  }

  async close (): Promise<void> {
    this.#pub.disconnect()
    this.#sub.disconnect()
  }
}
