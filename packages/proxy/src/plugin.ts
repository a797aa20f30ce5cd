import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteHandlerMethod } from 'fastify'
import fp from 'fastify-plugin'
import { pathProblem, tollgateRuntime, type TollgateRuntime } from '@tollgate/common'
import { resolveOptions, PROXIED_METHODS, type ProxyOptions, type ResolvedOptions, type ResolvedRoute } from './options.js'
import { BadPathError, BodyTooLargeError, IncompleteBodyError, MethodNotAllowedError } from './errors.js'
import { bodySource, hasSmallBody, readBody, SMALL_BODY } from './body.js'
import { ProxyCall, type CompiledRoute } from './forward.js'
import { Upstream } from './upstream.js'
import { validationHook } from './validation.js'
import { proxyUpgrade, routeUpgrades, upgradeSocket, websocketCount, WebSockets } from './websocket.js'

export const PLUGIN_NAME = '@tollgate/proxy'

/** State of one target, as `app.tollgateProxy.upstreams()` reports it. */
export interface TargetSnapshot {
  url: string
  weight: number
  healthy: boolean
  circuit: 'closed' | 'open' | 'half-open'
  active: number
}

/** The `app.tollgateProxy` decorator. */
export interface TollgateProxyApi {
  /** Runs one active health check of every target of every upstream now. */
  checkHealth: () => Promise<void>
  /** Live state of every upstream's targets (for `routes` listings, debugging, tests). */
  upstreams: () => Array<{ name: string, websockets: number, targets: TargetSnapshot[] }>
}

interface InnerOptions {
  resolved: ResolvedOptions
  upstreams: Map<string, Upstream>
}

function passThroughParser (_request: FastifyRequest, payload: unknown, done: (err: Error | null, body?: unknown) => void): void {
  done(null, payload)
}

function guardFor (route: ResolvedRoute, prefixLength: number, bodyLimit: number) {
  const methods = route.methods
  const allow = route.allow
  // Runs first among the route's onRequest hooks (it is the route's own option; other
  // plugins append theirs in onRoute), so auth and rate limits only see normal paths.
  return function tollgateProxyGuard (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const url = request.raw.url!
    const problem = pathProblem(url)
    if (problem !== null) {
      done(new BadPathError(problem))
      return
    }
    // The router matched `prefix` or `prefix/*`; confirm the raw path agrees (no `/prefixfoo`).
    const next = url.charCodeAt(prefixLength)
    if (!(Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */)) {
      done(new BadPathError('path does not match the route prefix'))
      return
    }
    const method = request.raw.method!
    if (methods !== null && !methods.has(method)) {
      reply.header('allow', allow)
      done(new MethodNotAllowedError(method))
      return
    }
    const length = request.headers['content-length']
    if (length !== undefined && Number(length) > bodyLimit) {
      // Refused before a byte of the body is read; the connection cannot be reused.
      reply.header('connection', 'close')
      done(new BodyTooLargeError())
      return
    }
    done()
  }
}

function handlerFor (compiled: CompiledRoute, websocket: boolean, websockets: WebSockets): RouteHandlerMethod {
  if (websocket) {
    return function tollgateProxyWebSocketHandler (request, reply) {
      if (upgradeSocket(request) !== undefined && request.raw.method === 'GET') proxyUpgrade(compiled, request, reply, websockets)
      else new ProxyCall(compiled, request, reply).start()
    }
  }
  return function tollgateProxyHandler (request, reply) {
    if (hasSmallBody(request) && !Buffer.isBuffer(request.body)) {
      proxyWithBufferedBody(compiled, request, reply)
      return
    }
    new ProxyCall(compiled, request, reply).start()
  }
}

/** Reads a small declared body whole (see SMALL_BODY), then proxies it as a Buffer. */
function proxyWithBufferedBody (compiled: CompiledRoute, request: FastifyRequest, reply: FastifyReply): void {
  // The guard refused content-length above bodyLimit, and Node's parser never reads past
  // content-length: the body is at most SMALL_BODY, and `null` cannot come back.
  readBody(bodySource(request), SMALL_BODY).then((body) => {
    request.body = body
    new ProxyCall(compiled, request, reply).start()
  }, (err: Error) => {
    // The client left mid-body: nobody to answer, and nothing was sent upstream.
    if (request.raw.destroyed) request.log.debug({ err }, 'request body incomplete')
    else reply.send(new IncompleteBodyError({ cause: err }))
  })
}

/** The encapsulated part: the content-type parser and the routes stay in this context. */
const routesPlugin: FastifyPluginAsync<InnerOptions> = async (fastify, { resolved, upstreams }) => {
  // Bodies are streamed, never parsed; this parser exists only in this context.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', passThroughParser)

  const events = fastify.tollgate.events
  // Fastify's own JSON parser (prototype-poisoning checks included), for bodies that are validated.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  const websockets = new WebSockets()
  // Registered inside a prefixed plugin (`{ prefix: '/v1' }`), a route's paths start with that
  // prefix too: the raw URL is checked and rewritten from the whole of it.
  const mount = fastify.prefix
  const websocketPrefixes = resolved.routes.filter((route) => route.websocket).map((route) => mount + route.prefix)
  if (websocketPrefixes.length > 0) {
    routeUpgrades(fastify, websocketPrefixes, websockets)
    // Open tunnels would keep server.close() waiting forever, and a pending handshake until
    // the upstream's timeout: handshakes get 503, tunnels a 1001 close frame (at most about
    // a second to take it), before the server stops.
    fastify.addHook('preClose', async () => { await websockets.close() })
  }
  for (const route of resolved.routes) {
    // The whole prefix the client's path starts with: the plugin's mount, then the route's.
    const fullPrefix = mount + route.prefix
    const compiled: CompiledRoute = Object.freeze({
      prefix: route.prefix,
      prefixLength: fullPrefix.length,
      rewritePrefix: route.rewritePrefix,
      upstream: upstreams.get(route.upstream)!,
      bodyLimit: resolved.bodyLimit,
      events,
      now: resolved.now,
      rewrite: route.rewrite,
      response: route.response,
      requestHeaders: route.requestHeaders,
      responseHeaders: route.responseHeaders
    })
    const config = {
      ...route.config,
      tollgate: { route: fullPrefix === '' ? '/' : fullPrefix, upstream: route.upstream },
      tollgateProxy: { upstream: route.upstream, prefix: route.prefix, rewritePrefix: route.rewritePrefix, websocket: route.websocket }
    }
    const onRequest = guardFor(route, fullPrefix.length, resolved.bodyLimit)
    const handler = handlerFor(compiled, route.websocket, websockets)
    // Validation runs after the route's onRequest hooks (guard, auth, rate limit) and only where configured.
    const preValidation = route.validate === null ? undefined : validationHook(route.validate, resolved.bodyLimit, parseJson)
    const urls = route.path === null ? [route.prefix === '' ? '/' : route.prefix, `${route.prefix}/*`] : [`${route.prefix}${route.path}`]
    for (const url of urls) {
      fastify.route({ method: [...PROXIED_METHODS], url, config, onRequest, handler, ...(preValidation === undefined ? {} : { preValidation }) })
    }
  }

  fastify.addHook('onReady', async () => {
    for (const upstream of upstreams.values()) {
      upstream.announce()
      if (resolved.healthChecks) upstream.startHealthChecks()
    }
  })
  fastify.addHook('onClose', async () => {
    await Promise.all([...upstreams.values()].map(async (upstream) => { await upstream.close() }))
  })
}

const kRegistrations = Symbol('tollgate.proxy.registrations')
type ProxyApi = TollgateProxyApi & { [kRegistrations]: Array<Map<string, Upstream>> }

/** `app.tollgateProxy`: health checks and state of the upstreams of every registration. */
function proxyApi (): ProxyApi {
  const registrations: Array<Map<string, Upstream>> = []
  const all = (): Upstream[] => registrations.flatMap((upstreams) => [...upstreams.values()])
  return {
    [kRegistrations]: registrations,
    async checkHealth () {
      await Promise.all(all().map(async (upstream) => { await upstream.checkHealth() }))
    },
    upstreams () {
      return all().map((upstream) => ({
        name: upstream.name,
        websockets: websocketCount(upstream),
        targets: upstream.targets.map((target) => ({
          url: target.url,
          weight: target.weight,
          healthy: upstream.isHealthy(target),
          circuit: target.circuit,
          active: target.active
        }))
      }))
    }
  }
}

const encapsulated = fp(routesPlugin, { fastify: '5.x', name: `${PLUGIN_NAME}/routes`, encapsulate: true })

/**
 * The outer part is not encapsulated, so the shared runtime (`app.tollgate`), the
 * `request.tollgateTarget` decorator and `app.tollgateProxy` land on the instance
 * the plugin was registered on (the root, usually), where the other Tollgate
 * plugins see them. Everything else lives in the encapsulated child.
 */
export const tollgateProxy: FastifyPluginAsync<ProxyOptions> = async (fastify, options) => {
  const resolved = resolveOptions(options, { bodyLimit: fastify.initialConfig.bodyLimit ?? 1_048_576 })
  const runtime: TollgateRuntime = tollgateRuntime(fastify)
  const log = fastify.log.child({ plugin: PLUGIN_NAME })

  if (!fastify.hasRequestDecorator('tollgateTarget')) fastify.decorateRequest('tollgateTarget', null)

  const upstreams = new Map<string, Upstream>()
  for (const [name, upstream] of resolved.upstreams) {
    const live = new Upstream(upstream, resolved.now, runtime.events, log)
    upstreams.set(name, live)
    runtime.addReadinessCheck(`upstream:${name}`, () => live.readiness())
  }

  // One API per app, over every registration of the plugin it sees (twice at the root, or in
  // a parent and a child scope): each registration adds its upstreams to it.
  let api = fastify.hasDecorator('tollgateProxy') ? (fastify.tollgateProxy as ProxyApi) : undefined
  if (api?.[kRegistrations] === undefined) {
    api = proxyApi()
    fastify.decorate('tollgateProxy', api)
  }
  api[kRegistrations].push(upstreams)

  await fastify.register(encapsulated, { resolved, upstreams })
}

export type { FastifyInstance }
