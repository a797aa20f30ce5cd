import { request as httpRequest, ServerResponse, validateHeaderName, validateHeaderValue, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HOP_BY_HOP_HEADERS, connectionTokens, currentResponse } from '@tollgate/common'
import { BadGatewayError, GatewayTimeoutError, ShuttingDownError, UpstreamUnavailableError, WebSocketLimitError } from './errors.js'
import { classify, upstreamHeaders, type CompiledRoute } from './forward.js'
import type { ResolvedUpstream } from './options.js'
import type { Upstream } from './upstream.js'
import { FrameScanner, closeFrame } from './websocket-frames.js'
import { messageBucket } from './websocket-rate.js'

const kSocket = Symbol('tollgate.upgradeSocket')
const kHead = Symbol('tollgate.upgradeHead')
const kListener = Symbol('tollgate.upgradeListener')

type UpgradeRequest = IncomingMessage & { [kSocket]?: Duplex, [kHead]?: Buffer }

/** `Retry-After` (seconds) of an upgrade refused because the upstream's tunnels are at `maxConnections`, or because the app is closing. */
export const WEBSOCKET_RETRY_AFTER = 5
/** After a close frame was sent to both sides, how long they get to close before they are destroyed (ms). */
const CLOSE_GRACE = 1000
/** Longest delay a Node timer takes (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER = 2_147_483_647

/** What an optional metrics plugin (@tollgate/metrics) offers for replies that never finish. */
type RecordHijacked = (request: FastifyRequest, reply: FastifyReply, aborted?: boolean) => void

/**
 * The upgrades of one plugin instance: the client sockets that became tunnels, the
 * handshakes waiting for their upstream and the open tunnels, so that closing the app
 * can end every one of them promptly and cleanly.
 */
export class WebSockets {
  /** Client sockets of open tunnels (a plain HTTP answer must not destroy them). */
  readonly clients = new Set<Duplex>()
  /** Handshakes waiting for the upstream's answer: each function aborts one. */
  readonly pending = new Set<() => void>()
  /** Open tunnels: each function closes one with `1001` and resolves once both sides are closed. */
  readonly open = new Set<() => Promise<void>>()
  /** Set once the app is closing: a handshake reaching the handler then is refused. */
  closing = false

  /**
   * Refuses the handshakes in progress (503, `Retry-After`: the upstream request is
   * aborted) and closes every tunnel with a `1001` close frame to both sides where the
   * stream is between frames; resolves when all are closed (at most about a second).
   */
  async close (): Promise<void> {
    this.closing = true
    for (const abort of [...this.pending]) abort()
    await Promise.all([...this.open].map(async (goAway) => { await goAway() }))
  }
}

/** Tunnels open or being opened, per upstream (the `maxConnections` cap). */
const openTunnels = new WeakMap<Upstream, number>()

/** Tunnels open or being opened to `upstream` now. */
export function websocketCount (upstream: Upstream): number {
  return openTunnels.get(upstream) ?? 0
}

/** The client socket of a WebSocket upgrade request, when this request is one. */
export function upgradeSocket (request: FastifyRequest): Duplex | undefined {
  return (request.raw as UpgradeRequest)[kSocket]
}

/**
 * Routes the server's `upgrade` requests through Fastify (as @fastify/websocket and
 * @fastify/http-proxy do), so every hook of the matched route (auth, rate limit, the
 * proxy's own guard) runs before anything reaches the upstream. A refusal is written
 * to the socket as a plain HTTP response. Upgrades outside `prefixes` are left to
 * other listeners when there are any.
 */
export function routeUpgrades (fastify: FastifyInstance, prefixes: readonly string[], websockets: WebSockets): void {
  const server = fastify.server as typeof fastify.server & { [kListener]?: unknown }
  if (server[kListener] !== undefined) return
  const owns = (url: string): boolean => {
    const path = url.split('?', 1)[0]!
    return prefixes.some((prefix) => prefix === '' || path === prefix || path.startsWith(`${prefix}/`))
  }
  const listener = (raw: UpgradeRequest, socket: Duplex, head: Buffer): void => {
    if (server.listenerCount('upgrade') > 1 && !owns(raw.url ?? '')) return
    if (!isWebSocketUpgrade(raw) || !owns(raw.url ?? '')) {
      // Node stops parsing at any `Upgrade` header once an upgrade listener exists, so an
      // h2c upgrade (`curl --http2`), a POST asking to upgrade, or a WebSocket asked of a
      // route that does not tunnel them would lose its body and what is pipelined after it.
      // A server may ignore an Upgrade it does not support (RFC 9110, 7.8): the request goes
      // back to the HTTP parser without it and is answered as the plain request it is.
      replayWithoutUpgrade(server, raw, socket, head)
      return
    }
    raw[kSocket] = socket
    raw[kHead] = head
    socket.on('error', () => { socket.destroy() })
    const response = new ServerResponse(raw)
    response.assignSocket(socket as never)
    // A plain HTTP answer (a refusal, or the upstream's non-101) ends the exchange, and says
    // so: Node then writes `Connection: close` rather than its default `keep-alive`.
    response.shouldKeepAlive = false
    response.on('finish', () => { if (!websockets.clients.has(socket)) socket.destroy() })
    fastify.routing(raw, response)
  }
  server[kListener] = listener
  server.on('upgrade', listener)
}

/** A `GET` asking for the `websocket` protocol: the only upgrade the gateway tunnels. */
function isWebSocketUpgrade (raw: IncomingMessage): boolean {
  if (raw.method !== 'GET') return false
  const upgrade = raw.headers.upgrade
  return upgrade !== undefined && upgrade.split(',').some((protocol) => protocol.trim().toLowerCase() === 'websocket')
}

/** Headers that make Node's parser hand a request to the `upgrade` listeners. */
const UPGRADE_ONLY_HEADERS = new Set(['upgrade', 'http2-settings'])

/**
 * Hands `socket` back to the HTTP server as a new connection whose first bytes are `raw`'s
 * head without its upgrade headers, then the body bytes already read (`head`): the server
 * parses the request again, body and keep-alive included, as if no upgrade had been asked.
 */
function replayWithoutUpgrade (server: FastifyInstance['server'], raw: IncomingMessage, socket: Duplex, head: Buffer): void {
  // An earlier pipelined request may still be answering on this socket, and its connection
  // state (not the new one's) hands the socket on when it ends: the new connection starts after it.
  const current = currentResponse(socket)
  if (current !== null && !current.writableFinished) {
    current.once('finish', () => { replayWithoutUpgrade(server, raw, socket, head) })
    current.once('close', () => { if (!current.writableFinished) socket.destroy() })
    return
  }
  // A keep-alive timer the old connection state set would otherwise cut the new one's requests.
  const plain = socket as Socket
  plain.setTimeout(0)
  let text = `${raw.method!} ${raw.url!} HTTP/${raw.httpVersion}\r\n`
  const names = raw.rawHeaders
  for (let i = 0; i < names.length; i += 2) {
    const name = names[i]!.toLowerCase()
    if (UPGRADE_ONLY_HEADERS.has(name)) continue
    let value = names[i + 1]!
    if (name === 'connection') {
      value = value.split(',').map((token) => token.trim()).filter((token) => token !== '' && !UPGRADE_ONLY_HEADERS.has(token.toLowerCase())).join(', ')
      if (value === '') continue
    }
    text += `${names[i]!}: ${value}\r\n`
  }
  socket.unshift(Buffer.concat([Buffer.from(text + '\r\n', 'latin1'), head]))
  // The HTTP layer of an HTTPS server listens for decrypted connections on `secureConnection`.
  server.emit((socket as Socket & { encrypted?: boolean }).encrypted === true ? 'secureConnection' : 'connection', socket)
}

/** Proxies a WebSocket upgrade; the client gets 101 only after the upstream sent its own. */
export function proxyUpgrade (route: CompiledRoute, request: FastifyRequest, reply: FastifyReply, websockets: WebSockets): void {
  const raw = request.raw as UpgradeRequest
  const client = raw[kSocket]!
  const head = raw[kHead] ?? Buffer.alloc(0)
  if (client.destroyed || client.readableEnded) {
    // The client went away while the route's hooks ran: nobody to answer, nothing to open.
    abandon(request, reply, client)
    return
  }
  if (websockets.closing) {
    refuseClosing(reply)
    return
  }
  const upstream = route.upstream
  const limits = upstream.options.websocket
  const count = websocketCount(upstream)
  if (count >= limits.maxConnections) {
    // Refused before the upstream is contacted: the cap protects it as much as the gateway.
    reply.header('retry-after', String(WEBSOCKET_RETRY_AFTER))
    reply.send(new WebSocketLimitError())
    return
  }
  const target = upstream.pick(null)
  if (target === null) {
    reply.header('retry-after', String(upstream.retryAfter()))
    reply.send(new UpstreamUnavailableError())
    return
  }
  openTunnels.set(upstream, count + 1)
  let counted = true
  const release = (): void => {
    if (!counted) return
    counted = false
    openTunnels.set(upstream, websocketCount(upstream) - 1)
  }
  request.tollgateTarget = target.url
  const url = raw.url!
  let path = route.rewritePrefix + url.slice(route.prefixLength)
  if (path.charCodeAt(0) !== 47) path = '/' + path
  const headers = upstreamHeaders(request)
  headers.host = target.host
  headers.connection = 'upgrade'
  headers.upgrade = raw.headers.upgrade ?? 'websocket'
  const { hostname, port, protocol } = new URL(target.url)
  const options = {
    hostname,
    port,
    path,
    method: 'GET',
    headers,
    agent: false as const,
    timeout: upstream.options.timeout,
    ...(upstream.options.ca === undefined ? {} : { ca: upstream.options.ca })
  }
  const started = performance.now()
  const outgoing = protocol === 'https:' ? httpsRequest(options) : httpRequest(options)
  const events = route.events
  /** `tollgate_upstream_duration_seconds`: until the upstream's answer (its 101 included). */
  const emitResponse = (status: number): void => {
    if (!events.hasListeners('upstreamResponse')) return
    events.emit('upstreamResponse', { upstream: upstream.name, target: target.url, status, seconds: (performance.now() - started) / 1000 })
  }

  let settled = false
  /** Ends the handshake phase; `false` when it had already ended. */
  const settle = (): boolean => {
    if (settled) return false
    settled = true
    websockets.pending.delete(closing)
    client.off('end', gone)
    client.off('close', gone)
    return true
  }
  const fail = (err: Error & { code?: string }): void => {
    if (!settle()) return
    release()
    upstream.failed(target)
    const failure = classify(err)
    emitResponse(failure === 'timeout' ? 504 : failure === 'connect' ? 503 : 502)
    // As for HTTP attempts: the request's own line carries the final error.
    request.log.debug({ err, target: target.url }, 'websocket upgrade to upstream failed')
    if (client.destroyed) {
      abandon(request, reply, client)
      return
    }
    if (failure === 'timeout') {
      reply.send(new GatewayTimeoutError({ cause: err }))
    } else if (failure === 'connect') {
      reply.header('retry-after', String(upstream.retryAfter()))
      reply.send(new UpstreamUnavailableError({ cause: err }))
    } else {
      reply.send(new BadGatewayError({ cause: err }))
    }
  }
  // The client left before the upstream answered: not the target's fault. An accepted socket
  // is half-open, so a client that gives up only ends it ('end'); 'close' covers a reset.
  const gone = (): void => {
    if (!settle()) return
    release()
    upstream.released(target)
    outgoing.destroy()
    abandon(request, reply, client)
  }
  // The app is closing: the handshake is refused now rather than after the upstream's timeout.
  const closing = (): void => {
    if (!settle()) return
    release()
    upstream.released(target)
    outgoing.destroy()
    refuseClosing(reply)
  }
  websockets.pending.add(closing)
  client.on('end', gone)
  client.on('close', gone)
  outgoing.on('timeout', () => {
    const err = Object.assign(new Error('upstream sent no upgrade answer in time'), { code: 'UND_ERR_HEADERS_TIMEOUT' })
    fail(err)
    outgoing.destroy(err)
  })
  outgoing.on('error', (err) => { fail(err) })
  outgoing.on('response', (res) => {
    // Not a 101: relayed as a plain HTTP response and no tunnel opens.
    if (!settle()) {
      res.destroy()
      return
    }
    release()
    emitResponse(res.statusCode!)
    if (res.statusCode! >= 502 && res.statusCode! <= 504) upstream.failed(target)
    else upstream.succeeded(target)
    copyHeaders(res.headers, reply)
    reply.header('connection', 'close')
    reply.code(res.statusCode!)
    reply.send(res)
  })
  outgoing.on('upgrade', (res, socket, upstreamHead) => {
    if (!settle()) {
      socket.destroy()
      return
    }
    outgoing.setTimeout(0)
    emitResponse(101)
    upstream.succeeded(target)
    if (client.destroyed) {
      release()
      socket.destroy()
      abandon(request, reply, client)
      return
    }
    reply.hijack()
    reply.code(101)
    websockets.clients.add(client)
    client.write(switchingProtocols(res, reply))
    let goAway: (() => Promise<void>) | undefined
    const tunnel = openTunnel(client as Socket, socket, head, upstreamHead, limits, route.now, credentialsExpiry(request), () => {
      websockets.clients.delete(client)
      if (goAway !== undefined) websockets.open.delete(goAway)
      release()
      // A tunnel never finishes its response, so no onResponse hook sees it: its one request
      // line and its counts are made now, with status 101 and the tunnel's lifetime (as Envoy
      // and nginx log an upgraded stream when it ends).
      recordHijacked(request, reply, false)
    })
    if (!tunnel.closed) {
      goAway = tunnel.goAway
      websockets.open.add(goAway)
    }
  })
  outgoing.end()
}

/** Refuses an upgrade because the app is closing: 503 with `Retry-After` (another instance may take it). */
function refuseClosing (reply: FastifyReply): void {
  reply.header('retry-after', String(WEBSOCKET_RETRY_AFTER))
  reply.send(new ShuttingDownError())
}

/** The client of an upgrade went away before its answer: its socket is let go, and its line recorded (499). */
function abandon (request: FastifyRequest, reply: FastifyReply, client: Duplex): void {
  client.destroy()
  reply.hijack()
  recordHijacked(request, reply, true)
}

/**
 * Hands a reply that will never finish to @tollgate/metrics (or whatever decorates
 * `app.tollgateMetrics.recordHijacked`), which logs and counts it as onResponse would.
 * Without it, nothing: the proxy does not depend on a metrics plugin.
 */
function recordHijacked (request: FastifyRequest, reply: FastifyReply, aborted: boolean): void {
  const metrics = (request.server as unknown as { tollgateMetrics?: { recordHijacked?: RecordHijacked } }).tollgateMetrics
  if (typeof metrics?.recordHijacked === 'function') metrics.recordHijacked(request, reply, aborted)
}

/**
 * When the credentials of the request stop being valid (ms, on the plugin's clock), or
 * `null`: the `exp` claim of the JWT that authenticated it, read from
 * `request.tollgateIdentity.claims` (set by @tollgate/auth, optional).
 */
function credentialsExpiry (request: FastifyRequest): number | null {
  const exp = (request as { tollgateIdentity?: FastifyRequest['tollgateIdentity'] }).tollgateIdentity?.claims?.exp
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null
}

/** Headers of a 101 that only the upstream's handshake may set. */
function isHandshakeHeader (name: string): boolean {
  return name.startsWith('sec-websocket-')
}

/**
 * The 101 the client gets: `Upgrade` as the upstream said it, `Connection: Upgrade` (nothing
 * else the upstream listed there), the upstream's end-to-end headers, and the headers the
 * route's hooks set on the reply (`x-request-id`, `RateLimit-*`, ...), which win over the
 * upstream's as on any proxied answer (`set-cookie` is appended). Hop-by-hop headers and
 * framing headers are never copied; a hook's header that is not a valid field is left out.
 */
function switchingProtocols (res: IncomingMessage, reply: FastifyReply): string {
  const own = reply.getHeaders()
  let lines = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${res.headers.upgrade ?? 'websocket'}\r\nConnection: Upgrade\r\n`
  const listed = connectionTokens(res.headers.connection)
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!
    const lower = name.toLowerCase()
    if (HOP_BY_HOP_HEADERS.has(lower) || listed.includes(lower) || lower === 'content-length') continue
    if (lower !== 'set-cookie' && own[lower] !== undefined && !isHandshakeHeader(lower)) continue
    lines += `${name}: ${res.rawHeaders[i + 1]!}\r\n`
  }
  for (const name in own) {
    const value = own[name]
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || name === 'content-length' || isHandshakeHeader(name)) continue
    for (const one of Array.isArray(value) ? value : [String(value)]) {
      try {
        validateHeaderName(name)
        validateHeaderValue(name, one)
      } catch {
        continue
      }
      lines += `${name}: ${one}\r\n`
    }
  }
  return lines + '\r\n'
}

/** An open tunnel, as {@link openTunnel} returns it. */
interface Tunnel {
  /** Closes both sides with `1001` (going away); resolves once both are closed (or destroyed after a grace period). */
  goAway: () => Promise<void>
  /** Whether the tunnel was already closed when `openTunnel` returned. */
  readonly closed: boolean
}

/**
 * Joins the client and upstream sockets. Upstream to client is a plain pipe (its frame
 * headers are followed, not changed); client to upstream is written chunk by chunk with
 * the same backpressure as a pipe, minus any frame over `maxMessageSize` or any message
 * past `maxMessagesPerSecond`. No payload is copied or unmasked. At `expiresAt` (ms on
 * `now`'s clock, the credentials' expiry) both sides get a close `1008`.
 */
function openTunnel (client: Socket, upstream: Duplex, head: Buffer, upstreamHead: Buffer, limits: ResolvedUpstream['websocket'], now: () => number, expiresAt: number | null, onClosed: () => void): Tunnel {
  const rate = limits.maxMessagesPerSecond
  const inbound = new FrameScanner(limits.maxMessageSize, rate > 0 ? messageBucket(rate, now) : undefined)
  const outbound = new FrameScanner(0)
  let closing = false
  let finished = false
  let grace: NodeJS.Timeout | undefined
  let expiry: NodeJS.Timeout | undefined
  let resolveClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve })

  const finish = (): void => {
    if (finished) return
    finished = true
    clearTimeout(grace)
    clearTimeout(expiry)
    client.destroy()
    upstream.destroy()
    onClosed()
    resolveClosed()
  }
  const sideClosed = (): void => {
    // While closing, each side gets the grace period to take its close frame.
    if (!closing || (client.destroyed && upstream.destroyed)) finish()
  }
  /** Closes both sides with a close frame where it falls between frames, else destroys that side. */
  const shutdown = (toClient: number, toUpstream: number, reason: string): void => {
    if (closing || finished) return
    closing = true
    clearTimeout(expiry)
    client.setTimeout(0)
    client.off('data', forward)
    upstream.off('data', observe)
    upstream.unpipe(client)
    // Whatever either side still sends is read and dropped, so their FIN and close arrive.
    client.resume()
    upstream.resume()
    if (outbound.atBoundary) client.end(closeFrame(toClient, reason, false))
    else client.destroy()
    if (inbound.atBoundary) upstream.end(closeFrame(toUpstream, reason, true))
    else upstream.destroy()
    grace = setTimeout(finish, CLOSE_GRACE)
    grace.unref()
    // Both sides may already be gone (destroyed mid-frame): then 'close' does the rest.
  }
  const forward = (chunk: Buffer): void => {
    const allowed = inbound.scan(chunk)
    if (allowed.length > 0 && !upstream.write(allowed)) client.pause()
    if (inbound.tooBig) shutdown(1009, 1001, 'message too big')
    else if (inbound.tooMany) shutdown(1008, 1001, 'too many messages')
  }
  const observe = (chunk: Buffer): void => { outbound.scan(chunk) }
  const tunnel: Tunnel = {
    goAway: async () => {
      shutdown(1001, 1001, 'going away')
      await closed
    },
    get closed () { return finished }
  }

  upstream.on('error', finish)
  client.on('error', finish)
  upstream.on('close', sideClosed)
  client.on('close', sideClosed)
  if (upstreamHead.length > 0) {
    observe(upstreamHead)
    client.write(upstreamHead)
  }
  if (head.length > 0) forward(head)
  if (closing) return tunnel
  upstream.on('drain', () => { if (!closing) client.resume() })
  client.on('data', forward)
  client.on('end', () => { if (!closing) upstream.end() })
  upstream.on('data', observe)
  upstream.pipe(client)
  if (limits.idleTimeout > 0) {
    // A socket's timeout counts reads and writes: every byte either way goes through `client`.
    client.setTimeout(limits.idleTimeout)
    client.on('timeout', () => { shutdown(1001, 1001, 'idle timeout') })
  }
  if (expiresAt !== null) {
    // The tunnel does not outlive the credentials that opened it. Re-armed past a Node
    // timer's longest delay, so a token valid for months is not closed at once.
    const check = (): void => {
      const left = expiresAt - now()
      if (left <= 0) shutdown(1008, 1008, 'credentials expired')
      else expiry = setTimeout(check, Math.min(left, MAX_TIMER)).unref()
    }
    check()
  }
  return tunnel
}

function copyHeaders (headers: IncomingMessage['headers'], reply: FastifyReply): void {
  const listed = connectionTokens(headers.connection)
  for (const name in headers) {
    if (HOP_BY_HOP_HEADERS.has(name) || listed.includes(name)) continue
    const value = headers[name]
    if (value !== undefined && (name === 'set-cookie' || !reply.hasHeader(name))) reply.header(name, value)
  }
}
