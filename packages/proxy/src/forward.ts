import { Readable, Transform, type TransformCallback } from 'node:stream'
import type { ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { util as undiciUtil, type Dispatcher } from 'undici'
import { HOP_BY_HOP_HEADERS, connectionTokens, nextTraceparent, parseTraceparent, type TollgateEvents } from '@tollgate/common'
import { BadGatewayError, BadPathError, BodyTooLargeError, GatewayTimeoutError, UpstreamUnavailableError } from './errors.js'
import type { Target, Upstream } from './upstream.js'
import { applyRequestRules, applyResponseRules, type HeaderRules } from './header-rules.js'
import { buildPath, type PathTemplate } from './path-template.js'
import { serializerFor, shapeable, type ResponseShaping } from './shaping.js'

/*
 * Why not reply.from(): @fastify/reply-from picks the upstream once per request
 * (getUpstream) and retries on that same base, maps ECONNREFUSED to a 500 whose
 * message is the socket error (naming the upstream's address), retries GET on 503
 * ten times by default, does not enforce the body limit on streamed (chunked)
 * bodies, and wraps every response in a promise-free but allocation-heavy path.
 * The contract needs a target chosen per attempt (balancing, breakers, retries on
 * another target) and exact 502/503/504 mapping, so the proxy drives undici's
 * dispatcher directly: one handler object per request, no promise, no closure on
 * the hot path, the response streamed through Fastify's reply.send(stream) so every
 * other plugin's onSend/onResponse hooks still run.
 */

/** What the handler needs of a route, computed once at registration. */
export interface CompiledRoute {
  readonly prefix: string
  readonly prefixLength: number
  readonly rewritePrefix: string
  readonly upstream: Upstream
  readonly bodyLimit: number
  readonly events: TollgateEvents
  readonly now: () => number
  /** Upstream path of a templated route (params percent-encoded); `null` rewrites the prefix. */
  readonly rewrite?: PathTemplate | null
  /** Response shaping; `null` (or absent) streams every answer untouched. */
  readonly response?: ResponseShaping | null
  readonly requestHeaders?: HeaderRules | null
  readonly responseHeaders?: HeaderRules | null
}

const { headerNameToString } = undiciUtil
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])
/** Request headers never copied upstream (beyond hop-by-hop ones): set by the proxy, or refused by undici. */
const REPLACED = new Set(['host', 'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'traceparent'])
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'EHOSTDOWN'])
const RESETS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED'])

const PENDING = 0
const STREAMING = 1
const DONE = 2

type Failure = 'connect' | 'reset' | 'timeout' | 'bad'

export function classify (err: Error & { code?: string }): Failure {
  const code = err.code
  if (code !== undefined) {
    if (CONNECT_FAILURES.has(code)) return 'connect'
    if (RESETS.has(code)) return 'reset'
    if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'timeout'
  }
  return 'bad'
}

const kCall = Symbol('tollgate.proxyCall')
type TrackedResponse = ServerResponse & { [kCall]?: ProxyCall }

function releaseHeld (call: ProxyCall): void {
  call.releaseHeld()
}

function queueTimedOut (call: ProxyCall): void {
  call.queueTimedOut()
}

/** Hands freed connections of `target` to the requests waiting for one, oldest first. */
function admitWaiting (target: Target, connections: number): void {
  const waiting = target.waiting
  while (target.running < connections && waiting.size > 0) {
    const call = waiting.values().next().value!
    waiting.delete(call)
    call.admit()
  }
}

function onClientClose (this: TrackedResponse): void {
  const call = this[kCall]
  if (call !== undefined) call.clientClosed()
}

/** The response body streamed to the client; backpressure pauses the upstream socket. */
class UpstreamBody extends Readable {
  readonly #call: ProxyCall
  constructor (call: ProxyCall) {
    super()
    this.#call = call
  }

  override _read (): void {
    this.#call.resumeUpstream()
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    this.#call.responseDestroyed()
    callback(err)
  }
}

/**
 * Copies the request body to undici. It stands between the client's socket and undici
 * so that undici destroying it (upstream failure) does not destroy the client's socket
 * (the client still gets its 502), and it cuts a chunked body off past `bodyLimit`.
 */
class RequestBody extends Transform {
  readonly #call: ProxyCall
  readonly #limit: number
  #seen = 0
  constructor (call: ProxyCall, limit: number) {
    super()
    this.#call = call
    this.#limit = limit
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#limit) {
      this.#call.bodyTooLarge = true
      callback(new BodyTooLargeError())
      return
    }
    callback(null, chunk)
  }
}

function onSourceError (this: Readable & { [kCall]?: ProxyCall }, err: Error): void {
  this[kCall]?.requestBody?.destroy(err)
}

/**
 * True when the answer's `Transfer-Encoding` names a coding other than `chunked` (`gzip, chunked`),
 * or `chunked` twice:
 * undici removes the chunking and the gateway re-derives framing, so the other coding's label
 * would be lost and the client would get compressed bytes unlabelled. Such an answer gets 502,
 * as nginx refuses any transfer coding but chunked. Only names of the right length are decoded.
 */
function foreignTransferCoding (raw: Buffer[]): boolean {
  let chunked = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length !== 17 || headerNameToString(name) !== 'transfer-encoding') continue
    for (const coding of raw[i + 1]!.toString('latin1').split(',')) {
      if (coding.trim().toLowerCase() !== 'chunked') return true
      // Chunked may be applied once only (RFC 9112 6.1): `chunked, chunked` is not a framing.
      if (++chunked > 1) return true
    }
  }
  return false
}

/** Statuses whose answers never have a body, whatever their Content-Length says. */
const BODILESS = new Set([204, 304])

/**
 * The `x-forwarded-for` sent upstream: the chain as received plus the socket peer when the
 * peer is a proxy Fastify's `trustProxy` trusts (as nginx's `$proxy_add_x_forwarded_for`
 * and Envoy do), else the client IP alone: anyone else's chain is a lie and is replaced.
 * `request.ips` exists only when `trustProxy` is set, and holds more than the peer only
 * when the peer is trusted.
 */
function forwardedFor (request: FastifyRequest, chain: string | string[] | undefined): string {
  if (chain === undefined) return request.ip
  const ips = request.ips
  if (ips === undefined || ips.length < 2) return request.ip
  return `${Array.isArray(chain) ? chain.join(', ') : chain}, ${ips[0]!}`
}

/**
 * Builds the headers sent upstream. No `host`: undici writes the target pool's own
 * (`hostname:port` of its origin, the same as the target's `host`), which also follows a
 * retry to another target, and spares a header of undici's per-request validation.
 */
export function upstreamHeaders (request: FastifyRequest): Record<string, string | string[]> {
  const incoming = request.headers
  const connection = incoming.connection
  const listed = connection === undefined ? null : connectionTokens(connection)
  const headers: Record<string, string | string[]> = {}
  for (const name in incoming) {
    if (HOP_BY_HOP_HEADERS.has(name) || REPLACED.has(name)) continue
    if (listed !== null && listed.includes(name)) continue
    const value = incoming[name]
    if (value !== undefined) headers[name] = value
  }
  headers['x-forwarded-for'] = forwardedFor(request, incoming['x-forwarded-for'])
  headers['x-forwarded-proto'] = request.protocol
  const host = request.host
  // An HTTP/1.0 request may come without a Host: then there is none to forward.
  if (typeof host === 'string' && host.length > 0) headers['x-forwarded-host'] = host
  headers['x-request-id'] = request.id
  headers.traceparent = nextTraceparent(incoming.traceparent)
  // A new trace (the client's traceparent missing or invalid) has no vendor state yet (W3C).
  if (headers.tracestate !== undefined && parseTraceparent(incoming.traceparent) === null) delete headers.tracestate
  return headers
}

/**
 * Copies an upstream response's headers to the reply, minus hop-by-hop ones. Headers set by the gateway win.
 *
 * Names go through undici's `headerNameToString`: a well-known name is found in its byte tree
 * as an interned lower-case constant, without decoding the buffer, lower-casing the copy, or
 * hashing a fresh string at every property lookup that follows. Each header goes straight to
 * the reply: a name the reply already has is either the gateway's (kept) or an earlier line of
 * this answer (`copied`: a repeat), so no object of all the headers is built in between.
 */
function copyResponseHeaders (raw: Buffer[], reply: FastifyReply): void {
  const count = raw.length >> 1
  const names = new Array<string>(count)
  let listed: string[] | null = null
  for (let i = 0; i < count; i++) {
    const name = headerNameToString(raw[2 * i]!)
    names[i] = name
    if (name === 'connection') {
      const tokens = connectionTokens(raw[2 * i + 1]!.toString('latin1'))
      listed = listed === null ? tokens : listed.concat(tokens)
    }
  }
  const copied: string[] = []
  let repeats: Map<string, string[]> | null = null
  for (let i = 0; i < count; i++) {
    const name = names[i]!
    if (HOP_BY_HOP_HEADERS.has(name) || (listed !== null && listed.includes(name))) continue
    // latin1: Node writes the header block of a streamed (Buffer) response as latin1,
    // so every byte of the value round-trips exactly.
    const value = raw[2 * i + 1]!.toString('latin1')
    if (name === 'set-cookie') {
      reply.header(name, value) // Fastify appends it to any set-cookie already there
    } else if (!reply.hasHeader(name)) {
      reply.header(name, value)
      copied.push(name)
    } else if (copied.includes(name)) {
      // A repeated line of this answer: all its values are set together at the end.
      repeats ??= new Map()
      const values = repeats.get(name)
      if (values === undefined) repeats.set(name, [reply.getHeader(name) as string, value])
      else values.push(value)
    }
  }
  if (repeats !== null) for (const [name, values] of repeats) reply.header(name, values)
}

/**
 * An upstream answer being buffered before anything is sent: until complete, to be shaped
 * (`shape`), or else only for the rest of the tick its head arrived in (see releaseHeld).
 */
interface Buffered {
  readonly status: number
  readonly rawHeaders: Buffer[]
  readonly shape: boolean
  readonly chunks: Buffer[]
  length: number
}

/** One proxied request: its attempts on the upstream's targets, and the streaming of the answer. */
export class ProxyCall {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  readonly route: CompiledRoute
  readonly upstream: Upstream
  readonly #options: Dispatcher.DispatchOptions
  readonly #retriable: boolean
  requestBody: RequestBody | null = null
  bodyTooLarge = false
  #target: Target | null = null
  #tried: Target[] | null = null
  #attempts = 0
  #firstStart = 0
  #attemptStart = 0
  #state = PENDING
  #counted = false
  /** This attempt holds one of its target's `connections` (see Target.running). */
  #running = false
  /** Bounds this attempt's wait for a free connection (only while it waits). */
  #queueTimer: NodeJS.Timeout | null = null
  #clientGone = false
  #abort: ((reason?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #body: UpstreamBody | null = null
  #refused: Error | null = null
  /** While an answer is buffered (see {@link Buffered}); `null` once it streams or is sent. */
  #buffered: Buffered | null = null

  constructor (route: CompiledRoute, request: FastifyRequest, reply: FastifyReply) {
    this.request = request
    this.reply = reply
    this.route = route
    this.upstream = route.upstream
    const raw = request.raw
    const url = raw.url!
    let path: string
    const rewrite = route.rewrite
    if (rewrite == null) {
      path = route.rewritePrefix + url.slice(route.prefixLength)
      if (path.charCodeAt(0) !== 47 /* / */) path = '/' + path
    } else {
      const built = buildPath(rewrite, request.params as Record<string, string>, url)
      if (built === null) {
        this.#refused = new BadPathError('a path param is empty or a dot segment')
        path = '/'
      } else {
        path = built
      }
    }
    const method = raw.method!
    const incoming = request.headers
    const hasBody = incoming['transfer-encoding'] !== undefined ||
      (incoming['content-length'] !== undefined && incoming['content-length'] !== '0')
    let body: Readable | null = null
    if (hasBody && Buffer.isBuffer(request.body)) {
      // Already read (and checked) by the route's validation: forwarded byte for byte.
      body = request.body as unknown as Readable
    } else if (hasBody) {
      const source = (request.body instanceof Readable ? request.body : raw) as Readable & { [kCall]?: ProxyCall }
      const limiter = new RequestBody(this, route.bodyLimit)
      this.requestBody = limiter
      source[kCall] = this
      source.on('error', onSourceError)
      source.pipe(limiter)
      body = limiter
    }
    const headers = upstreamHeaders(request)
    if (route.requestHeaders != null) applyRequestRules(headers, route.requestHeaders, request)
    this.#options = { path, method, headers, body, headersTimeout: route.upstream.options.timeout }
    this.#retriable = !hasBody && route.upstream.options.retries > 0 && IDEMPOTENT.has(method)
    const res = reply.raw as TrackedResponse
    res[kCall] = this
    res.on('close', onClientClose) // emitted once; `on` spares once()'s wrapper per request
  }

  start (): void {
    if (this.#refused !== null) {
      this.requestBody?.destroy()
      this.reply.send(this.#refused)
      return
    }
    this.#firstStart = this.route.now()
    const target = this.upstream.pick(null)
    if (target === null) {
      this.#unavailable()
      return
    }
    this.#dispatch(target)
  }

  #dispatch (target: Target): void {
    this.#target = target
    this.#attempts++
    this.#state = PENDING
    this.#abort = null
    this.#counted = true
    target.active++
    this.request.tollgateTarget = target.url
    this.#attemptStart = performance.now()
    const options = this.upstream.options
    if (target.running < options.connections) {
      this.#send(target, options.timeout)
      return
    }
    // Every connection is busy: wait here (not in undici's queue), and `timeout` counts
    // from now, so the wait for a connection and the wait for the headers share it.
    target.waiting.add(this)
    this.#queueTimer = setTimeout(queueTimedOut, options.timeout, this)
  }

  /** Sends the attempt on one of the target's connections; undici's header timer gets what is left of `timeout`. */
  #send (target: Target, headersTimeout: number): void {
    target.running++
    this.#running = true
    this.#options.headersTimeout = headersTimeout
    target.pool.dispatch(this.#options, this as unknown as Dispatcher.DispatchHandler)
  }

  /** A connection of the target is free for this waiting attempt (it left `target.waiting`). */
  admit (): void {
    clearTimeout(this.#queueTimer!)
    this.#queueTimer = null
    const left = Math.floor(this.upstream.options.timeout - (performance.now() - this.#attemptStart))
    if (left < 1) this.#timedOutWaiting()
    else this.#send(this.#target!, left)
  }

  /** `timeout` passed while the attempt waited for a connection. */
  queueTimedOut (): void {
    this.#queueTimer = null
    if (this.#target!.waiting.delete(this)) this.#timedOutWaiting()
  }

  /**
   * 504 for an attempt that never got a connection: nothing was sent, so the target did
   * not fail (a busy target is not a broken one: the circuit breaker does not count it),
   * and a half-open trial it carried is given back.
   */
  #timedOutWaiting (): void {
    this.#state = DONE
    this.#uncount()
    const target = this.#target!
    this.upstream.released(target)
    this.#emitResponse(504)
    if (this.#clientGone) return
    this.request.log.debug({ target: target.url, attempt: this.#attempts }, 'upstream attempt failed: timeout waiting for a connection')
    if (this.requestBody !== null) {
      this.requestBody.destroy()
      if (!this.request.raw.complete) this.reply.header('connection', 'close')
    }
    this.reply.send(new GatewayTimeoutError({ cause: new Error('no free upstream connection within timeout') }))
  }

  #uncount (): void {
    if (this.#counted) {
      this.#counted = false
      const target = this.#target!
      target.active--
      if (this.#running) {
        this.#running = false
        target.running--
        if (target.waiting.size > 0) admitWaiting(target, this.upstream.options.connections)
      }
    }
  }

  #emitResponse (status: number): void {
    const events = this.route.events
    if (events.hasListeners('upstreamResponse')) {
      events.emit('upstreamResponse', {
        upstream: this.upstream.name,
        target: this.#target!.url,
        status,
        seconds: (performance.now() - this.#attemptStart) / 1000
      })
    }
  }

  // ---- undici dispatch handler ----

  onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    if (this.#clientGone) abort()
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.#clientGone) return false
    if (statusCode < 200 || statusCode > 599) {
      // 1xx are not relayed (undici consumes them); anything else is not HTTP.
      if (statusCode >= 100 && statusCode < 200) return true
      this.#abort?.(new Error(`invalid status code ${statusCode}`))
      return false
    }
    if (foreignTransferCoding(rawHeaders)) {
      this.#abort?.(new Error('transfer coding other than chunked'))
      return false
    }
    this.#state = STREAMING
    this.#resume = resume
    const target = this.#target!
    if (statusCode >= 502 && statusCode <= 504) this.upstream.failed(target)
    else this.upstream.succeeded(target)
    this.#emitResponse(statusCode)
    if (this.request.raw.method === 'HEAD') {
      this.#stream(statusCode, rawHeaders)
      return true
    }
    const shaping = this.route.response
    // Shaped answers are buffered until complete, then reduced to the schema's fields (see
    // #sendBuffered); any other is held for the rest of this tick only (see releaseHeld).
    const shape = shaping != null && statusCode !== 204 && serializerFor(shaping, statusCode) !== null && shapeable(rawHeaders, shaping.limit)
    this.#buffered = { status: statusCode, rawHeaders, shape, chunks: [], length: 0 }
    if (!shape) process.nextTick(releaseHeld, this)
    return true
  }

  /**
   * End of the tick in which an unshaped answer's head arrived. undici parses a whole socket
   * read synchronously, so a small answer is complete by now and onComplete sent it as one
   * buffer, without a stream. A larger or slower one is streamed from here, with what arrived
   * so far: at most one socket read is ever held, and no later than this tick.
   */
  releaseHeld (): void {
    const buffered = this.#buffered
    if (buffered === null || buffered.shape) return
    this.#streamBuffered(buffered)
  }

  /** Streams a buffered answer from here on, starting with what was buffered. */
  #streamBuffered (buffered: Buffered): void {
    this.#buffered = null
    if (this.#clientGone) return
    this.#stream(buffered.status, buffered.rawHeaders)
    for (const chunk of buffered.chunks) this.#body!.push(chunk)
  }

  /**
   * The answer's status and headers on the reply: the upstream's minus hop-by-hop ones, then
   * the route's response rules. A shaped answer (`shapedLength`) drops the validators and
   * digests of the upstream's bytes, which no longer hold, and gets its new length.
   */
  #writeHead (statusCode: number, rawHeaders: Buffer[], shapedLength?: number): void {
    const reply = this.reply
    copyResponseHeaders(rawHeaders, reply)
    if (shapedLength !== undefined) {
      reply.removeHeader('etag')
      reply.removeHeader('content-md5')
      reply.removeHeader('digest')
      reply.header('content-length', String(shapedLength))
    }
    if (this.route.responseHeaders != null) applyResponseRules(reply, this.route.responseHeaders, this.request)
    // An HTTP/1 connection cannot be reused while the client is still sending a body nobody reads.
    if (this.requestBody !== null && !this.request.raw.complete) reply.header('connection', 'close')
    // A 304 may repeat the 200's length (RFC 9110 8.6), but undici, and so Node's fetch,
    // then waits for that many bytes and fails: it is optional, and dropped.
    if (statusCode === 304) reply.removeHeader('content-length')
    reply.code(statusCode)
  }

  /** Sends the upstream's status and headers, and streams its body. */
  #stream (statusCode: number, rawHeaders: Buffer[]): void {
    this.#writeHead(statusCode, rawHeaders)
    const body = new UpstreamBody(this)
    this.#body = body
    this.reply.send(body)
  }

  onData (chunk: Buffer): boolean {
    const buffered = this.#buffered
    if (buffered !== null) {
      buffered.length += chunk.length
      buffered.chunks.push(chunk)
      // Too large to shape (a chunked answer past the limit): it passes through untouched.
      if (buffered.shape && buffered.length > this.route.response!.limit) this.#streamBuffered(buffered)
      return true
    }
    const body = this.#body
    if (body === null || body.destroyed) return false
    return body.push(chunk)
  }

  onComplete (): void {
    this.#state = DONE
    this.#uncount()
    if (this.#buffered !== null) this.#sendBuffered(this.#buffered)
    else this.#body?.push(null)
  }

  /** Sends a complete buffered answer as one buffer: as it came, or reduced to the schema's fields. */
  #sendBuffered (buffered: Buffered): void {
    this.#buffered = null
    if (this.#clientGone) return
    const raw = buffered.chunks.length === 1 ? buffered.chunks[0]! : Buffer.concat(buffered.chunks, buffered.length)
    if (buffered.length === 0) {
      // No payload at all: Fastify then adds no Content-Type, and no Content-Length to a
      // 204 or 304 (any other status gets `0`, which is what it had).
      this.#writeHead(buffered.status, buffered.rawHeaders)
      this.reply.send()
      return
    }
    if (!buffered.shape) {
      this.#writeHead(buffered.status, buffered.rawHeaders)
      if (!this.reply.hasHeader('content-type')) {
        // Fastify labels a Buffer it sends application/octet-stream; a stream it leaves
        // untyped, as the upstream sent it (a browser may then sniff it, which is its call).
        const body = new UpstreamBody(this)
        this.#body = body
        this.reply.send(body)
        body.push(raw)
        body.push(null)
        return
      }
      this.reply.send(raw)
      return
    }
    let shaped: Buffer
    try {
      const serialize = serializerFor(this.route.response!, buffered.status)!
      shaped = Buffer.from(serialize(JSON.parse(raw.toString('utf8'))), 'utf8')
    } catch (err) {
      // Unparseable or not what the schema describes: better no answer than a leaking one.
      this.request.log.warn({ err, target: this.#target!.url }, 'upstream JSON answer could not be shaped')
      this.reply.send(new BadGatewayError({ cause: err as Error }))
      return
    }
    this.#writeHead(buffered.status, buffered.rawHeaders, shaped.length)
    this.reply.send(shaped)
  }

  onError (err: Error & { code?: string }): void {
    if (this.#state === DONE) return
    const wasStreaming = this.#state === STREAMING
    this.#state = DONE
    this.#uncount()
    const target = this.#target!
    if (this.#clientGone) {
      this.upstream.released(target)
      return
    }
    const buffered = this.#buffered
    if (wasStreaming && err.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' && BODILESS.has(buffered?.status ?? this.reply.statusCode)) {
      // A 304 may carry the Content-Length of the 200 it stands for (RFC 9110 8.6), and
      // undici counts the body it never has against it: the answer is whole, pass it on.
      if (buffered !== null) this.#sendBuffered(buffered)
      else this.#body?.push(null)
      return
    }
    if (wasStreaming && buffered !== null) {
      // Failed while an answer was buffered: nothing reached the client yet.
      this.#buffered = null
      this.request.log.warn({ err, target: target.url }, 'upstream response failed mid-body')
      this.reply.send(new BadGatewayError({ cause: err }))
      return
    }
    if (wasStreaming) {
      // Headers (maybe bytes) already went to the client: all that is left is to cut it off.
      this.request.log.warn({ err, target: target.url }, 'upstream response failed mid-body')
      this.#body!.destroy(new BadGatewayError({ cause: err }))
      return
    }
    if (this.bodyTooLarge) {
      this.upstream.released(target)
      this.reply.header('connection', 'close')
      this.reply.send(new BodyTooLargeError())
      return
    }
    const failure = classify(err)
    this.upstream.failed(target)
    // At debug: the request's one log line carries the final error (and the metrics every
    // failed attempt); a warn per attempt would double the lines of an outage.
    this.request.log.debug({ err, target: target.url, attempt: this.#attempts }, 'upstream attempt failed: %s', failure)
    if (this.#retriable && (failure === 'connect' || failure === 'reset') &&
        this.#attempts <= this.upstream.options.retries &&
        this.route.now() - this.#firstStart < this.upstream.options.timeout) {
      const tried = (this.#tried ??= [])
      tried.push(target)
      const next = this.upstream.pick(tried)
      if (next !== null) {
        this.#emitResponse(failure === 'connect' ? 503 : 502)
        const events = this.route.events
        if (events.hasListeners('upstreamRetry')) events.emit('upstreamRetry', { upstream: this.upstream.name, target: next.url })
        this.#dispatch(next)
        return
      }
    }
    if (this.requestBody !== null && !this.request.raw.complete) this.reply.header('connection', 'close')
    if (failure === 'connect') {
      this.#emitResponse(503)
      this.reply.header('retry-after', String(this.upstream.retryAfter()))
      this.reply.send(new UpstreamUnavailableError({ cause: err }))
    } else if (failure === 'timeout') {
      this.#emitResponse(504)
      this.reply.send(new GatewayTimeoutError({ cause: err }))
    } else {
      this.#emitResponse(502)
      this.reply.send(new BadGatewayError({ cause: err }))
    }
  }

  // ---- client side ----

  resumeUpstream (): void {
    this.#resume?.()
  }

  /** Fastify destroyed the response body (the client went away, or it finished). */
  responseDestroyed (): void {
    if (this.#state !== DONE) this.clientClosed()
  }

  /** The client's connection closed before the answer was complete: abort the upstream request. */
  clientClosed (): void {
    if (this.#state === DONE || this.#clientGone) return
    if (this.reply.raw.writableFinished) return
    this.#clientGone = true
    if (this.#abort !== null) {
      this.#abort(new Error('client closed the connection'))
    } else if (this.#queueTimer !== null && this.#target!.waiting.delete(this)) {
      // Still waiting for a connection: it leaves the line, and never reaches the upstream.
      clearTimeout(this.#queueTimer)
      this.#queueTimer = null
      this.#state = DONE
      this.#uncount()
      this.upstream.released(this.#target!)
    }
  }

  #unavailable (): void {
    this.reply.header('retry-after', String(this.upstream.retryAfter()))
    if (this.requestBody !== null) {
      this.requestBody.destroy()
      if (!this.request.raw.complete) this.reply.header('connection', 'close')
    }
    this.reply.send(new UpstreamUnavailableError())
  }
}
