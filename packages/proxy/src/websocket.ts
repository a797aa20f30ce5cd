import { request as httpRequest, ServerResponse, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HOP_BY_HOP_HEADERS, connectionTokens } from '@tollgate/common'
import { BadGatewayError, GatewayTimeoutError, UpstreamUnavailableError } from './errors.js'
import { classify, upstreamHeaders, type CompiledRoute } from './forward.js'

const kSocket = Symbol('tollgate.upgradeSocket')
const kHead = Symbol('tollgate.upgradeHead')
const kListener = Symbol('tollgate.upgradeListener')

type UpgradeRequest = IncomingMessage & { [kSocket]?: Duplex, [kHead]?: Buffer }

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

/** Proxies a WebSocket upgrade; the client gets 101 only after the upstream sent its own. */
export function proxyUpgrade (route: CompiledRoute, request: FastifyRequest, reply: FastifyReply, tunnels: Set<Duplex>): void {
  const raw = request.raw as UpgradeRequest
  const client = raw[kSocket]!
  const head = raw[kHead] ?? Buffer.alloc(0)
  const upstream = route.upstream
  const target = upstream.pick(null)
  if (target === null) {
    reply.header('retry-after', String(upstream.retryAfter()))
    reply.send(new UpstreamUnavailableError())
    return
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
  client.on('close', () => { if (!settled) outgoing.destroy() })
  outgoing.on('response', (res) => {
    // Not a 101: relayed as a plain HTTP response and no tunnel opens.
    settled = true
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
    if (upstreamHead.length > 0) client.write(upstreamHead)
    if (head.length > 0) socket.write(head)
    const close = (): void => {
      tunnels.delete(client)
      tunnels.delete(socket)
      client.destroy()
      socket.destroy()
    }
    socket.on('error', close)
    socket.on('close', close)
    client.on('error', close)
    client.on('close', close)
    socket.pipe(client)
    client.pipe(socket)
  })
  outgoing.end()
}

function copyHeaders (headers: IncomingMessage['headers'], reply: FastifyReply): void {
  const listed = connectionTokens(headers.connection)
  for (const name in headers) {
    if (HOP_BY_HOP_HEADERS.has(name) || listed.includes(name)) continue
    const value = headers[name]
    if (value !== undefined && (name === 'set-cookie' || !reply.hasHeader(name))) reply.header(name, value)
  }
}
