import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { isAbsolute, resolve } from 'node:path'
import Fastify, * as fastifyModule from 'fastify'
import { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import cors from '@fastify/cors'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { currentResponse, decodeUnreserved, headerAlias, parseDuration, parseSize, pathProblem, tollgateRuntime } from '@tollgate/common'
import tollgateProxy, { PROXIED_METHODS } from '@tollgate/proxy'
import tollgateAuth, { resolveOptions as resolveAuthOptions, type OptionProblem } from '@tollgate/auth'
import tollgateRateLimit from '@tollgate/rate-limit'
import tollgateMetrics, { genReqId, loggerOptions } from '@tollgate/metrics'
import type { DestinationStream } from 'pino'
import { ManifestError } from './manifest/errors.js'
import type { LoadedManifest, Manifest, RouteSection } from './manifest/types.js'
import { isInlinePem, manifestProblems } from './manifest/validate.js'
import { openApiDocument } from './openapi.js'
import { httpUpstreams, isHttpRoute, registerMicroservices } from './microservices.js'
import { contractOptions, protectedHeaderNames } from './manifest/contracts.js'
import { compileTrust, isForwardingHeader, OVERRIDE_HEADERS } from './trust.js'
import { helmetDefaults, setHeaders } from './security-headers.js'
import { StdoutLog } from './log-stream.js'
import { VERSION } from './version.js'
import { SERVER_DEFAULTS } from './manifest/defaults.js'

export { SERVER_DEFAULTS }

// LogController replaced `disableRequestLogging` in Fastify 5.7; older 5.x lack it.
const LogController = (fastifyModule as { LogController?: new (options: { disableRequestLogging: boolean }) => NonNullable<FastifyServerOptions['logController']> }).LogController

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'
const OVERRIDE_SET: ReadonlySet<string> = new Set(OVERRIDE_HEADERS)
/** Set upstream by the gateway itself: a client's `x_request_id` would sit beside the real one (CGI reads both as one). */
const SET_BY_GATEWAY: ReadonlySet<string> = new Set(['x-request-id'])
/** `Retry-After` (seconds) of a request refused because the gateway is shutting down: another instance can take it at once. */
const DRAIN_RETRY_AFTER = 1
/** What the gateway says of a request Node refused before parsing it (see clientErrorHandler). */
const CLIENT_ERROR_MESSAGES: Readonly<Record<number, string>> = {
  400: 'malformed request',
  408: 'the request was not received in time',
  431: 'request headers too large'
}
/** The longest `:param` of a route pattern the router matches; a longer one gets 414. */
const MAX_PARAM_LENGTH = 500

export interface GatewayOptions {
  /** Where log lines go (default stdout). Tests pass a stream to read them. */
  logStream?: DestinationStream
  /** Overrides `server.logLevel`. */
  logLevel?: string
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The manifest this gateway was built from. */
    tollgateManifest: Manifest
    /**
     * Resolves once the gateway's other listeners (the plain-HTTP redirect of `server.tls`)
     * are up after `listen()`, which does not wait for them; rejects naming the one that
     * could not listen. `tollgate start` awaits it, so that such a failure stops the gateway.
     */
    tollgateListeners: () => Promise<void>
  }
}

function readKeyFile (file: string, baseDir: string): Buffer {
  return readFileSync(isAbsolute(file) ? file : resolve(baseDir, file))
}

function authRouteConfig (route: RouteSection): false | Record<string, unknown> {
  if (route.auth === false) return false
  return { ...(route.auth ?? {}) }
}

function errorBody (request: FastifyRequest, statusCode: number, message: string): Record<string, unknown> {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, requestId: request.id }
}

/**
 * Builds a gateway from a validated manifest: a Fastify instance with every
 * configured plugin registered and ready, not yet listening. Throws a
 * {@link ManifestError} (never a half-built gateway) when anything is wrong.
 */
export async function createGateway (manifest: Manifest | LoadedManifest, options: GatewayOptions = {}): Promise<FastifyInstance> {
  const baseDir = (manifest as LoadedManifest).baseDir ?? process.cwd()
  const problems = manifestProblems(manifest, baseDir)
  if (problems.length > 0) throw new ManifestError(problems)

  const server = manifest.server ?? {}
  const bodyLimit = parseSize(server.bodyLimit ?? SERVER_DEFAULTS.bodyLimit, 'server.bodyLimit')
  const trustPeer = compileTrust(server.trustProxy)
  const apiKeyHeader = manifest.auth?.apiKeys?.header?.toLowerCase() ?? 'x-api-key'
  const requestTimeout = parseDuration(server.requestTimeout ?? SERVER_DEFAULTS.requestTimeout, 'server.requestTimeout')
  const headersTimeout = parseDuration(server.headersTimeout ?? SERVER_DEFAULTS.headersTimeout, 'server.headersTimeout')
  const maxHeaders = server.maxHeaders ?? SERVER_DEFAULTS.maxHeaders
  // Node's own limits, fixed when the server is made: request line + headers size (431
  // beyond), and how often it sweeps connections for the header and request timeouts
  // (Node's default sweep is every 30 s, which would let a slowloris client outlive
  // headersTimeout by that much).
  const shortest = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout
  const nodeServerOptions = {
    // The request checks answer a missing Host themselves, as JSON with the request id.
    requireHostHeader: false,
    maxHeaderSize: parseSize(server.maxHeaderSize ?? SERVER_DEFAULTS.maxHeaderSize, 'server.maxHeaderSize'),
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(shortest / 2)))
  }

  const securityHeaders = server.securityHeaders === false ? [] : helmetDefaults()
  // Each route's Allow, longest prefix first: for the 405s the gateway answers itself. A
  // route of NestJS patterns allows the methods its patterns map (per prefix, not per path).
  const httpRoutes = manifest.routes
    .map((route) => ({
      prefix: route.prefix,
      allow: isHttpRoute(manifest, route) ? allowOf(route.methods) : allowOf((route.patterns ?? []).map((pattern) => pattern.method))
    }))
    .sort((a, b) => b.prefix.length - a.prefix.length)
  const routeOf = (path: string): { prefix: string, allow: string } | undefined =>
    httpRoutes.find(({ prefix }) => prefix === '/' || path === prefix || path.startsWith(`${prefix}/`))
  /** The Allow of a 405 for TRACE: the route's methods on a route's path, else every method. */
  const allowFor = (url: string): string => {
    const queryAt = url.indexOf('?')
    return routeOf(queryAt === -1 ? url : url.slice(0, queryAt))?.allow ?? ALLOWED_METHODS
  }
  const stdout = options.logStream === undefined ? new StdoutLog() : undefined
  const logStream = options.logStream ?? stdout!
  const fastifyOptions: FastifyServerOptions & { http?: typeof nodeServerOptions, https?: typeof nodeServerOptions & { cert: Buffer, key: Buffer } } = {
    logger: {
      ...loggerOptions({ level: options.logLevel ?? server.logLevel ?? 'info', apiKeyHeader }),
      stream: logStream
    },
    genReqId,
    requestIdHeader: false,
    // One log line per request is @tollgate/metrics' job; Fastify's own two are off.
    ...(LogController === undefined ? { disableRequestLogging: true } : { logController: new LogController({ disableRequestLogging: true }) }),
    // A hop count goes to Fastify as our own function: Fastify 5.12.8+ reads a bare number
    // as "trust no hop" (a hop count cannot tell a proxy from a client that connects
    // directly), whereas the manifest documents the Express meaning, which the header
    // stripping above also uses.
    trustProxy: typeof server.trustProxy === 'number' ? trustPeer : (server.trustProxy ?? false),
    bodyLimit,
    requestTimeout,
    http: nodeServerOptions,
    keepAliveTimeout: parseDuration(server.keepAliveTimeout ?? SERVER_DEFAULTS.keepAliveTimeout, 'server.keepAliveTimeout'),
    // While draining, a request on an open connection is refused by the gateway's own checks
    // (its JSON 503 with Retry-After and the usual headers), not Fastify's bare 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Before routing: `/api/%70osts` is `/api/posts` (RFC 3986), matched and sent as such.
    rewriteUrl: (request) => decodeUnreserved(request.url ?? '/'),
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: MAX_PARAM_LENGTH },
    // What Node refuses before a request exists (headers too large, an unparsable request):
    // Fastify's default answer is bare; the gateway's carries what its other refusals do.
    clientErrorHandler (error: NodeJS.ErrnoException, socket: Socket) {
      if (error.code === 'ECONNRESET' || socket.destroyed) return
      // An answer already being written on this connection (a pipelined request Node could not
      // parse, behind it): ours would land inside its bytes. Only the connection is closed, as
      // Node's own handler does. (An answer not started yet is the refused request's own.)
      if (currentResponse(socket)?.headersSent === true) {
        socket.destroy()
        return
      }
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
      const requestId = randomUUID()
      const body = JSON.stringify({ statusCode: status, error: STATUS_CODES[status], message: CLIENT_ERROR_MESSAGES[status], requestId })
      let head = `HTTP/1.1 ${status} ${STATUS_CODES[status]!}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\nx-request-id: ${requestId}\r\n`
      for (const [name, value] of securityHeaders) head += `${name}: ${value}\r\n`
      app.log.debug({ err: error, requestId }, 'malformed request refused before parsing')
      if (socket.writable) socket.end(`${head}\r\n${body}`, () => { socket.destroy() })
      else socket.destroy()
    },
    frameworkErrors (error, request, reply) {
      // The router refuses a malformed URL before any hook runs, so this answer gets here
      // what the hooks give every other one. TRACE is still a 405 here.
      setHeaders(reply as FastifyReply, securityHeaders)
      void (reply as FastifyReply).header('x-request-id', request.id)
      if (request.method === 'TRACE') {
        void (reply as FastifyReply).code(405).header('allow', allowFor(request.url)).send(errorBody(request as FastifyRequest, 405, 'TRACE is not allowed'))
        return
      }
      // Not the router's message, which quotes the URL, query and all: it may hold a token.
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        // A pattern's `:id` longer than the router takes: the URI's fault, said as such (as Fastify does).
        void (reply as FastifyReply).code(414).send(errorBody(request as FastifyRequest, 414, `a path parameter is longer than ${MAX_PARAM_LENGTH} characters`))
      } else {
        void (reply as FastifyReply).code(400).send(errorBody(request as FastifyRequest, 400, 'malformed URL: a percent-encoding does not decode'))
      }
      // No route, so no onResponse hook: the request's one log line and its count come from here.
      app.tollgateMetrics.recordUnrouted(request as FastifyRequest, reply as FastifyReply)
    }
  }
  if (server.tls !== undefined) {
    fastifyOptions.https = { ...nodeServerOptions, cert: readKeyFile(server.tls.cert, baseDir), key: readKeyFile(server.tls.key, baseDir) }
  }
  const app = Fastify(fastifyOptions as FastifyServerOptions)
  // A line logged after this still reaches stdout: in the next turn, or at process exit.
  if (stdout !== undefined) app.addHook('onClose', (_instance, done) => { stdout.handOver(); done() })
  // `Expect: 100-continue`: Node would invite every body with a 100 before any check ran.
  // One declared over bodyLimit gets no invitation, only the route's 413 (as nginx and
  // Envoy answer), so the client never sends it.
  app.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    const declared = Number(request.headers['content-length'])
    if (!(declared > bodyLimit)) response.writeContinue()
    app.server.emit('request', request, response)
  })
  // Slowloris: a client must finish its headers in time (requestTimeout bounds the whole request).
  app.server.headersTimeout = headersTimeout
  // Node truncates past maxHeadersCount without a word; one more than the limit lets the
  // onRequest check below see (and refuse) a request that has too many.
  app.server.maxHeadersCount = maxHeaders + 1
  if (server.maxConnections !== undefined) app.server.maxConnections = server.maxConnections
  const log = app.log.child({ plugin: '@tollgate/gateway' })
  app.decorate('tollgateManifest', manifest)
  tollgateRuntime(app)

  if (server.trustProxy === true) {
    log.warn('server.trustProxy is true: every peer may set X-Forwarded-For, so client IPs (and IP rate limits) can be spoofed unless this port is reachable only through your proxy')
  }

  // CONNECT never reaches Fastify (Node hands it to the 'connect' event): refuse it
  // here as the contract says rather than let Node drop the connection.
  app.server.on('connect', (_request, socket) => {
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nAllow: ${ALLOWED_METHODS}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n` +
      JSON.stringify({ statusCode: 405, error: 'Method Not Allowed', message: 'CONNECT is not allowed' }))
  })

  // The gateway's own endpoints are public, unlimited and not counted as traffic.
  const internalPaths = [server.health ?? SERVER_DEFAULTS.health, '/readyz', server.metrics ?? SERVER_DEFAULTS.metrics, server.docs ?? SERVER_DEFAULTS.docs]
    .filter((path): path is string => typeof path === 'string')
  app.addHook('onRoute', (route) => {
    if (internalPaths.some((path) => route.url === path || route.url?.startsWith(`${path}/`) === true)) {
      route.config = { ...(route.config as object), auth: false, rateLimit: false, metrics: false }
    } else if (route.method === 'OPTIONS' && route.url === '*') {
      // @fastify/cors's catch-all preflight route: an answer of the gateway's own, like its
      // endpoints, not counted under a `route="*"` of every path (logged at debug).
      route.config = { ...(route.config as object), metrics: false }
    }
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    // Our own errors and Fastify's say nothing secret; anything else might (a library's message can name an address).
    const known = typeof error.code === 'string' && (error.code.startsWith('TOLLGATE_') || error.code.startsWith('FST_'))
    // At debug: the request's one line (@tollgate/metrics) carries the error, its stack
    // included for a 5xx; a second line per failed request would double a flood of them.
    request.log.debug({ err: error }, statusCode >= 500 ? 'request failed' : 'request refused')
    void reply.code(statusCode).send(errorBody(request, statusCode, known || statusCode < 500 ? error.message : 'Internal Server Error'))
  })
  // The router knows Fastify's methods only: PROPFIND or PURGE on a route's path reaches the
  // not-found handler, and is that route's 405 (with its Allow), not a 404.
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? ''
    if (!PROXIED_METHODS.includes(request.method)) {
      const route = routeOf(path)
      if (route !== undefined) {
        void reply.code(405).header('allow', route.allow).send(errorBody(request, 405, `${request.method} is not allowed on ${route.prefix}`))
        return
      }
    }
    void reply.code(404).send(errorBody(request, 404, `no route matches ${request.method} ${path.length > 200 ? `${path.slice(0, 200)}...` : path}`))
  })

  // Auth and rate limits before every route, the gateway's own endpoints included (they are
  // public and unlimited through the onRoute hook above): each plugin then reads every route
  // as it is added, and neither needs its late-route safety net (hooks on every request).
  // Their route hooks run after the global hooks of metrics and the gateway checks anyway.
  const auth = manifest.auth
  if (auth !== undefined) {
    const jwt = auth.jwt
    const authOptions = {
      ...(jwt === undefined
        ? {}
        : {
            jwt: {
              ...jwt,
              publicKey: jwt.publicKey === undefined || isInlinePem(jwt.publicKey) ? jwt.publicKey : readKeyFile(jwt.publicKey, baseDir).toString('utf8')
            }
          }),
      ...(auth.apiKeys === undefined ? {} : { apiKeys: auth.apiKeys }),
      ...(auth.forward === undefined ? {} : { forward: auth.forward }),
      ...(auth.identityHeaders === undefined ? {} : { identityHeaders: auth.identityHeaders }),
      defaultRoute: 'authenticated',
      // The request line (@tollgate/metrics) carries each refusal's error: one line per request.
      refusalLogLevel: 'debug'
    }
    try {
      // The plugin checks these again when registered; here its problems get their manifest path.
      resolveAuthOptions(authOptions as never, { path: 'auth' })
    } catch (error) {
      const found = (error as { problems?: OptionProblem[] }).problems
      if (found === undefined) throw error
      throw new ManifestError(found.map((problem) => `${problem.path}: ${problem.message}`))
    }
    await app.register(tollgateAuth, authOptions as never)
  }

  // A route's own rateLimit needs the plugin even when the manifest has no rateLimit section.
  const anyRouteLimit = manifest.routes.some((route) => route.rateLimit !== undefined && route.rateLimit !== false)
  if (manifest.rateLimit !== undefined || manifest.redis !== undefined || anyRouteLimit) {
    await app.register(tollgateRateLimit, {
      ...(manifest.rateLimit ?? {}),
      ...(manifest.redis === undefined ? {} : { redis: manifest.redis }),
      apiKeyHeader
    } as never)
  }

  await app.register(tollgateMetrics, { path: server.metrics ?? SERVER_DEFAULTS.metrics })

  // A callback hook, not an async one: no promise and no microtask hop on every request.
  // After @tollgate/metrics' hook (the request id header), so that a request refused here
  // gets the request id and the security headers like any other answer.
  // Set once the app starts closing. A request that reaches the gateway after that came on a
  // connection already open (pipelined behind an answer, or sent as the drain closed it):
  // its answer may never be delivered (the answer ahead of it says Connection: close), so it
  // is refused rather than sent upstream, where it would run unanswered.
  let draining = false
  app.addHook('preClose', (done) => { draining = true; done() })
  app.addHook('onRequest', function tollgateGatewayChecks (request, reply, done) {
    // On the reply, not the raw response as helmet does: one raw setHeader() sends every
    // other header of the answer through Node's slower setHeader path too. The proxy keeps
    // a header the gateway set, so these win over an upstream's own.
    setHeaders(reply, securityHeaders)
    if (draining) {
      reply.header('connection', 'close').header('retry-after', String(DRAIN_RETRY_AFTER))
      void reply.code(503).send(errorBody(request, 503, 'the gateway is shutting down'))
      return
    }
    const rawHeaders = request.raw.rawHeaders
    if (rawHeaders.length > maxHeaders * 2) {
      reply.header('connection', 'close')
      void reply.code(431).send(errorBody(request, 431, `more than ${maxHeaders} header fields`))
      return
    }
    let hosts = 0
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!
      if (name.length === 4 && name.toLowerCase() === 'host') hosts++
    }
    if (hosts > 1 || (hosts === 0 && request.raw.httpVersion === '1.1')) {
      // RFC 9112 section 3.2: an HTTP/1.1 request with no Host, or with more than one, is
      // answered 400 (Node's own answer to a missing one is off: it had no body and no id).
      reply.header('connection', 'close')
      void reply.code(400).send(errorBody(request, 400, hosts > 1 ? 'more than one Host header' : 'no Host header'))
      return
    }
    const headers = request.headers
    const trusted = trustPeer(request.socket.remoteAddress ?? '', 0)
    for (const name in headers) {
      // `x_forwarded_for` and `x.original.url` are the same header to CGI-style upstreams.
      const alias = name.includes('_') || name.includes('.') ? headerAlias(name) : name
      if (OVERRIDE_SET.has(alias) || (isForwardingHeader(alias) && (!trusted || alias !== name)) ||
        (alias !== name && SET_BY_GATEWAY.has(alias))) delete headers[name]
    }
    if (request.method === 'TRACE') {
      reply.header('allow', allowFor(request.url))
      void reply.code(405).send(errorBody(request, 405, 'TRACE is not allowed'))
      return
    }
    // The proxy refuses a path not in normal form on its routes; refusing it here too means
    // `/x/../api/posts` or `//api/posts` get the same 400 instead of a 404 that depends on
    // whether the router happened to match.
    const problem = pathProblem(request.raw.url ?? '')
    if (problem !== null) {
      void reply.code(400).send(errorBody(request, 400, `Bad request path: ${problem}`))
      return
    }
    done()
  })

  if (server.cors !== undefined) {
    // Only a real preflight (Origin and Access-Control-Request-Method) is answered here;
    // any other OPTIONS is routed like a request, so an unlisted method still gets 405.
    const corsOptions = { ...server.cors, hideOptionsRoute: true }
    const notPreflight = { ...corsOptions, preflight: false }
    await app.register(cors, {
      hideOptionsRoute: true,
      delegator (request, callback) {
        const preflight = request.method !== 'OPTIONS' || (request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined)
        callback(null, preflight ? corsOptions : notPreflight)
      }
    })
  }

  const docs = server.docs ?? SERVER_DEFAULTS.docs
  if (docs !== false) {
    await app.register(swagger, { mode: 'static', specification: { document: openApiDocument(manifest, VERSION, baseDir) as never } })
    await app.register(swaggerUi, { routePrefix: docs, staticCSP: true })
  }

  const health = server.health ?? SERVER_DEFAULTS.health
  if (health !== false) {
    app.get(health, async () => ({ status: 'ok' }))
    app.get('/readyz', async (request, reply) => {
      const results = await app.tollgate.checkReadiness()
      const failing = results.filter((check) => !check.ok)
      if (failing.length === 0) return { status: 'ready', checks: results }
      reply.header('retry-after', '5')
      return await reply.code(503).send({ ...errorBody(request, 503, `not ready: ${failing.map((check) => check.name).join(', ')}`), checks: failing })
    })
  }


  // A manifest whose upstreams are all NestJS microservices has nothing to proxy.
  // An upstream's `ca` is a file in the manifest; the proxy takes the PEM.
  const upstreams = Object.fromEntries(Object.entries(httpUpstreams(manifest)).map(([name, upstream]) =>
    [name, upstream.ca === undefined ? upstream : { ...upstream, ca: readKeyFile(upstream.ca, baseDir).toString('utf8') }]))
  if (Object.keys(upstreams).length > 0) await app.register(tollgateProxy, {
    upstreams,
    bodyLimit,
    // Header rules may not touch the identity headers auth sets (checked by validate too).
    protectedHeaders: protectedHeaderNames(manifest),
    routes: manifest.routes.map((route, i) => ({
      prefix: route.prefix,
      upstream: route.upstream,
      rewritePrefix: route.rewritePrefix ?? '',
      ...(route.methods === undefined ? {} : { methods: route.methods }),
      websocket: route.websocket === true,
      // path, rewrite, validate, response, responseBufferLimit, requestHeaders, responseHeaders ($file schemas read).
      ...contractOptions(route, `routes[${i}]`, baseDir, []),
      config: {
        auth: authRouteConfig(route),
        ...(route.rateLimit === undefined ? {} : { rateLimit: route.rateLimit }),
        stripCredentials: route.stripCredentials === true
      }
    })).filter((_route, i) => isHttpRoute(manifest, manifest.routes[i]!))
  } as never)

  // Routes with patterns are answered by NestJS microservices; like the proxy, registered
  // after auth and rate limits so that their onRoute hooks apply.
  await registerMicroservices(app, manifest, baseDir, (route) => ({
    auth: authRouteConfig(route),
    ...(route.rateLimit === undefined ? {} : { rateLimit: route.rateLimit })
  }))

  const redirectPort = server.tls?.redirectHttpPort
  const listeners = redirectPort === undefined ? Promise.resolve() : addRedirectListener(app, server.host ?? SERVER_DEFAULTS.host, redirectPort)
  app.decorate('tollgateListeners', async () => { await listeners })

  await app.ready()
  return app
}

/** The `Allow` of a route: its methods (GET bringing HEAD), else every method the proxy answers. */
function allowOf (methods: readonly string[] | undefined): string {
  if (methods === undefined) return PROXIED_METHODS.join(', ')
  const listed = new Set(methods.map((method) => method.toUpperCase()))
  if (listed.has('GET')) listed.add('HEAD')
  return PROXIED_METHODS.filter((method) => listed.has(method)).join(', ')
}

/** A plain-HTTP listener that answers 308 to the same path on the HTTPS port. */
function addRedirectListener (app: FastifyInstance, host: string, port: number): Promise<void> {
  let redirect: Server | undefined
  let settle: { resolve: () => void, reject: (error: Error) => void } | undefined
  const started = new Promise<void>((resolve, reject) => { settle = { resolve, reject } })
  started.catch(() => {}) // logged below; whoever awaits tollgateListeners() acts on it
  // onListen, not onReady: createGateway() readies the app for `validate` too, which must not
  // bind ports. Fastify only logs an onListen hook's error, hence the promise.
  app.addHook('onListen', async () => {
    const address = app.server.address()
    const httpsPort = typeof address === 'object' && address !== null ? address.port : 443
    redirect = createServer((request, response) => {
      const hostname = /^[A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\]/.exec(request.headers.host ?? '')?.[0] ?? 'localhost'
      const location = `https://${hostname}${httpsPort === 443 ? '' : `:${httpsPort}`}${request.url?.startsWith('/') === true ? request.url : '/'}`
      response.writeHead(308, { location, 'content-type': 'text/plain', connection: 'close' }).end(`Redirecting to ${location}\n`)
    })
    try {
      await new Promise<void>((resolve, reject) => {
        redirect!.once('error', reject).listen(port, host, () => { resolve() })
      })
    } catch (error) {
      const failure = new Error(`server.tls.redirectHttpPort: cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error })
      // The message says it all; a refused start prints no stack trace (contract).
      app.log.error(failure.message)
      redirect = undefined
      settle!.reject(failure)
      return
    }
    app.log.info({ port: (redirect.address() as { port: number }).port }, 'redirecting plain HTTP to HTTPS')
    settle!.resolve()
  })
  app.addHook('onClose', async () => {
    if (redirect === undefined) return
    redirect.closeAllConnections()
    await new Promise<void>((resolve) => redirect!.close(() => { resolve() }))
  })
  return started
}
