/**
 * The NestJS microservices wire protocol (`@nestjs/microservices` 8 to 11), spoken
 * without NestJS: patterns, packets, replies and how a reply's error is mapped.
 */
import { BadGatewayError, NoResponderError, RejectedError } from './errors.js'

/** A message or event pattern as NestJS handlers declare it: `'get_user'`, `{ cmd: 'get_user' }`. */
export type Pattern = string | number | { readonly [key: string]: PatternValue }
export type PatternValue = string | number | boolean | null | { readonly [key: string]: PatternValue }

/** A request (`id` set) or an event (no `id`). */
export interface OutgoingPacket {
  pattern: string
  data: unknown
  id?: string
}

/** One reply packet. An observable answers several times; the last one has `isDisposed: true`. */
export interface ReplyPacket {
  id?: unknown
  response?: unknown
  err?: unknown
  isDisposed?: boolean
  status?: unknown
}

/** What the server answers when it has no handler for the pattern (`NO_MESSAGE_HANDLER`). */
export const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.'

const MAX_DEPTH = 5
const MAX_KEYS = 20

function escape (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')
}

/**
 * The route string of a pattern, exactly as NestJS computes it (`transformPatternToRoute`):
 * strings and numbers as they are; objects with their keys sorted by `localeCompare`,
 * recursively, strings quoted. It is the Redis channel and NATS subject, and what the
 * server looks handlers up by, so `{ role: 'user', cmd: 'get' }` and `{ cmd: 'get', role: 'user' }`
 * reach the same handler.
 */
export function patternRoute (pattern: unknown, depth = 0): string {
  if (typeof pattern === 'string' || typeof pattern === 'number') return `${pattern}`
  if (typeof pattern !== 'object' || pattern === null) return String(pattern)
  if (depth > MAX_DEPTH) return '[MAX_DEPTH_REACHED]'
  const keys = Object.keys(pattern)
  if (keys.length > MAX_KEYS) return '[TOO_MANY_KEYS]'
  const parts = keys.sort((a, b) => a.localeCompare(b)).map((key) => {
    const value = (pattern as Record<string, unknown>)[key]
    const rendered = typeof value === 'string' ? `"${escape(value)}"` : patternRoute(value, depth + 1)
    return `"${escape(key)}":${rendered}`
  })
  return `{${parts.join(',')}}`
}

function statusOf (err: Record<string, unknown>): number | undefined {
  for (const key of ['statusCode', 'status'] as const) {
    const value = err[key]
    const status = typeof value === 'number' ? value : typeof value === 'string' && /^\d{3}$/.test(value) ? Number(value) : undefined
    if (status !== undefined) return status
  }
  return undefined
}

/**
 * The HTTP error for a reply's `err`: an `RpcException` whose error object carries a
 * 4xx `statusCode` or `status` keeps that status and its `message`; a missing handler
 * is "no responder" (503); anything else is a 502 whose details go to the log only.
 */
export function replyError (err: unknown): Error {
  if (err === NO_MESSAGE_HANDLER) return new NoResponderError({ cause: new Error(NO_MESSAGE_HANDLER) })
  if (typeof err === 'object' && err !== null && !Array.isArray(err)) {
    const record = err as Record<string, unknown>
    const status = statusOf(record)
    if (status !== undefined && status >= 400 && status < 500) {
      const raw = Array.isArray(record.message) ? record.message.filter((m) => typeof m === 'string').join('; ') : record.message
      const message = typeof raw === 'string' && raw.length > 0 ? raw.slice(0, 500) : 'The upstream service refused the request'
      const error = new RejectedError(message)
      ;(error as { statusCode: number }).statusCode = status
      return error
    }
  }
  return new BadGatewayError({ cause: Object.assign(new Error('the service answered an error'), { reply: err }) })
}

/** Reply packets of one request, until the last one. */
export interface CallResult {
  /** Every `response` received, in order (an observable gives several; `undefined` ones are skipped). */
  values: unknown[]
}

interface Pending {
  resolve: (result: CallResult) => void
  reject: (error: Error) => void
  values: unknown[]
  timer: NodeJS.Timeout
  /** What the call was sent over (a TCP connection), so a broken one fails only its own calls. */
  owner: unknown
}

/**
 * Calls waiting for their replies, by id. A reply whose id is unknown (another
 * gateway's, or one that arrives after its call timed out) is dropped.
 */
export class PendingCalls {
  readonly #calls = new Map<string, Pending>()

  get size (): number {
    return this.#calls.size
  }

  /** Registers a call; it fails with `onTimeout()` if its last reply is not in within `timeoutMs`. */
  add (id: string, timeoutMs: number, onTimeout: () => Error, owner?: unknown): Promise<CallResult> {
    const result = new Promise<CallResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id)
        reject(onTimeout())
      }, timeoutMs)
      this.#calls.set(id, { resolve, reject, values: [], timer, owner })
    })
    // A reply can settle the call before the caller awaits it (an error answered while the
    // request is still being published): that is not an unhandled rejection. The caller
    // still receives the rejection when it awaits `result`.
    result.catch(() => {})
    return result
  }

  /** Feeds one reply packet; returns false when no call waits for it. */
  settle (packet: ReplyPacket): boolean {
    if (typeof packet !== 'object' || packet === null || typeof packet.id !== 'string') return false
    const call = this.#calls.get(packet.id)
    if (call === undefined) return false
    if (packet.err !== undefined && packet.err !== null) {
      this.#finish(packet.id, call)
      call.reject(replyError(packet.err))
      return true
    }
    if (packet.response !== undefined) call.values.push(packet.response)
    if (packet.isDisposed === true) {
      this.#finish(packet.id, call)
      call.resolve({ values: call.values })
    }
    return true
  }

  /** Fails one call (for example when its message could not be sent). */
  fail (id: string, error: Error): void {
    const call = this.#calls.get(id)
    if (call === undefined) return
    this.#finish(id, call)
    call.reject(error)
  }

  /** Fails every call sent over `owner` (or every call when it is undefined). */
  failAll (error: () => Error, owner?: unknown): void {
    for (const [id, call] of this.#calls) {
      if (owner === undefined || call.owner === owner) {
        this.#finish(id, call)
        call.reject(error())
      }
    }
  }

  #finish (id: string, call: Pending): void {
    clearTimeout(call.timer)
    this.#calls.delete(id)
  }
}

/** A target URL without credentials: safe as a metrics label and in logs. */
export function targetLabel (raw: string): string {
  try {
    const url = new URL(raw)
    url.username = ''
    url.password = ''
    return url.toString().replace(/\/$/, '')
  } catch {
    return raw
  }
}
