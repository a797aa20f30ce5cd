import { request as httpRequest, ServerResponse, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HOP_BY_HOP_HEADERS, connectionTokens } from '@tollgate/common'
import { BadGatewayError, GatewayTimeoutError, UpstreamUnavailableError, WebSocketLimitError } from './errors.js'
import { classify, upstreamHeaders, type CompiledRoute } from './forward.js'
import type { ResolvedUpstream } from './options.js'
import type { Upstream } from './upstream.js'
import { FrameScanner, closeFrame } from './websocket-frames.js'
import { messageBucket } from './websocket-rate.js'

const kSocket = Symbol('tollgate.upgradeSocket')
const kHead = Symbol('tollgate.upgradeHead')
const kListener = Symbol('tollgate.upgradeListener')

type UpgradeRequest = IncomingMessage & { [kSocket]?: Duplex, [kHead]?: Buffer }

/** `Retry-After` (seconds) of an upgrade refused because the upstream's tunnels are at `maxConnections`. */
export const WEBSOCKET_RETRY_AFTER = 5
/** After a close frame was sent to both sides, how long they get to close before they are destroyed (ms). */
const CLOSE_GRACE = 1000

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
export function routeUpgrades (fastify: FastifyInstance, prefixes: readonly string[], tunnels: Set<Duplex>): void {
  const server = fastify.server as typeof fastify.server & { [kListener]?: unknown }
  if (server[kListener] !== undefined) return
  const owns = (url: string): boolean => {
    const path = url.split('?', 1)[0]!
    return prefixes.some((prefix) => prefix === '' || path === prefix || path.startsWith(`${prefix}/`))
  }
  const listener = (raw: UpgradeRequest, socket: Duplex, head: Buffer): void => {
    if (server.listenerCount('upgrade') > 1 && !owns(raw.url ?? '')) return
    if (!isWebSocketUpgrade(raw)) {
      // Node stops parsing at any `Upgrade` header once an upgrade listener exists, so an
      // h2c upgrade (`curl --http2`) or a POST asking to upgrade would lose its body here.
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
    // A plain HTTP answer (a refusal, or the upstream's non-101) ends the exchange.
    response.on('finish', () => { if (!tunnels.has(socket)) socket.destroy() })
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
export function proxyUpgrade (route: CompiledRoute, request: FastifyRequest, reply: FastifyReply, tunnels: Set<Duplex>): void {
  const raw = request.raw as UpgradeRequest
  const client = raw[kSocket]!
  const head = raw[kHead] ?? Buffer.alloc(0)
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
  const outgoing = protocol === 'https:' ? httpsRequest(options) : httpRequest(options)
  let settled = false
  const fail = (err: Error & { code?: string }, timedOut: boolean): void => {
    if (settled) return
    settled = true
    release()
    upstream.failed(target)
    request.log.warn({ err, target: target.url }, 'websocket upgrade to upstream failed')
    if (client.destroyed) return
    if (timedOut) {
      reply.send(new GatewayTimeoutError({ cause: err }))
    } else if (classify(err) === 'connect') {
      reply.header('retry-after', String(upstream.retryAfter()))
      reply.send(new UpstreamUnavailableError({ cause: err }))
    } else {
      reply.send(new BadGatewayError({ cause: err }))
    }
  }
  outgoing.on('timeout', () => {
    const err = Object.assign(new Error('upstream sent no upgrade answer in time'), { code: 'UND_ERR_HEADERS_TIMEOUT' })
    fail(err, true)
    outgoing.destroy(err)
  })
  outgoing.on('error', (err) => { fail(err, false) })
  client.on('close', () => {
    if (settled) return
    // The client left before the upstream answered: not the target's fault.
    settled = true
    release()
    upstream.released(target)
    outgoing.destroy()
  })
  outgoing.on('response', (res) => {
    // Not a 101: relayed as a plain HTTP response and no tunnel opens.
    settled = true
    release()
    if (res.statusCode! >= 502 && res.statusCode! <= 504) upstream.failed(target)
    else upstream.succeeded(target)
    copyHeaders(res.headers, reply)
    reply.header('connection', 'close')
    reply.code(res.statusCode!)
    reply.send(res)
  })
  outgoing.on('upgrade', (res, socket, upstreamHead) => {
    settled = true
    outgoing.setTimeout(0)
    upstream.succeeded(target)
    if (client.destroyed) {
      release()
      socket.destroy()
      return
    }
    reply.hijack()
    tunnels.add(client)
    tunnels.add(socket)
    let lines = 'HTTP/1.1 101 Switching Protocols\r\n'
    const listed = connectionTokens(res.headers.connection)
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const name = res.rawHeaders[i]!
      const lower = name.toLowerCase()
      if (lower !== 'connection' && lower !== 'upgrade' && (HOP_BY_HOP_HEADERS.has(lower) || listed.includes(lower))) continue
      lines += `${name}: ${res.rawHeaders[i + 1]!}\r\n`
    }
    client.write(lines + '\r\n')
    openTunnel(client as Socket, socket, head, upstreamHead, limits, route.now, () => {
      tunnels.delete(client)
      tunnels.delete(socket)
      release()
    })
  })
  outgoing.end()
}

/**
 * Joins the client and upstream sockets. Upstream to client is a plain pipe (its frame
 * headers are followed, not changed); client to upstream is written chunk by chunk with
 * the same backpressure as a pipe, minus any frame over `maxMessageSize` or any message
 * past `maxMessagesPerSecond`. No payload is copied or unmasked.
 */
function openTunnel (client: Socket, upstream: Duplex, head: Buffer, upstreamHead: Buffer, limits: ResolvedUpstream['websocket'], now: () => number, onClosed: () => void): void {
  const rate = limits.maxMessagesPerSecond
  const inbound = new FrameScanner(limits.maxMessageSize, rate > 0 ? messageBucket(rate, now) : undefined)
  const outbound = new FrameScanner(0)
  let closing = false
  let finished = false
  let grace: NodeJS.Timeout | undefined

  const finish = (): void => {
    if (finished) return
    finished = true
    clearTimeout(grace)
    client.destroy()
    upstream.destroy()
    onClosed()
  }
  const sideClosed = (): void => {
    // While closing, each side gets the grace period to take its close frame.
    if (!closing || (client.destroyed && upstream.destroyed)) finish()
  }
  /** Closes both sides with a close frame where it falls between frames, else destroys that side. */
  const shutdown = (toClient: number, toUpstream: number, reason: string): void => {
    if (closing) return
    closing = true
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
  }
  const forward = (chunk: Buffer): void => {
    const allowed = inbound.scan(chunk)
    if (allowed.length > 0 && !upstream.write(allowed)) client.pause()
    if (inbound.tooBig) shutdown(1009, 1001, 'message too big')
    else if (inbound.tooMany) shutdown(1008, 1001, 'too many messages')
  }
  const observe = (chunk: Buffer): void => { outbound.scan(chunk) }

  upstream.on('error', finish)
  client.on('error', finish)
  upstream.on('close', sideClosed)
  client.on('close', sideClosed)
  if (upstreamHead.length > 0) {
    observe(upstreamHead)
    client.write(upstreamHead)
  }
  if (head.length > 0) forward(head)
  if (closing) return
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
}

function copyHeaders (headers: IncomingMessage['headers'], reply: FastifyReply): void {
  const listed = connectionTokens(headers.connection)
  for (const name in headers) {
    if (HOP_BY_HOP_HEADERS.has(name) || listed.includes(name)) continue
    const value = headers[name]
    if (value !== undefined && (name === 'set-cookie' || !reply.hasHeader(name))) reply.header(name, value)
  }
}
