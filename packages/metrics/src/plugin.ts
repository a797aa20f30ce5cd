import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { Registry } from 'prom-client'
import { parseTraceparent, routeLabel, tollgateRuntime } from '@tollgate/common'
import { InvalidOptionError, InvalidRouteConfigError, ListenError, ScrapeError } from './errors.js'
import { createMetricSet, listen, type TollgateMetricSet } from './metrics.js'
import { resolveOptions, type ResolvedOptions, type TollgateMetricsOptions } from './options.js'
import { redactUrl } from './logger.js'
import type { CounterSeries, HistogramSeries } from './series.js'

/** What the plugin decorates the app with (`app.tollgateMetrics`). */
export interface TollgateMetricsDecorator {
  /** The registry holding every Tollgate metric (and the default process metrics). */
  readonly registry: Registry
  /** The metric objects, to read or to add series to. */
  readonly metrics: TollgateMetricSet
  /** The Prometheus text exposition, as served at `path`. */
  scrape: () => Promise<string>
  /** The bound address of the separate metrics listener (`port` option) once ready, else `null`. */
  address: () => AddressInfo | null
  /**
   * Counts and logs, as `route="unmatched"`, an answer sent before routing, which no hook
   * sees (Fastify's `frameworkErrors`): call it once the reply is sent.
   */
  recordUnrouted: (request: FastifyRequest, reply: FastifyReply) => void
  /**
   * Counts and logs a request whose reply was hijacked and never finishes its response (a
   * WebSocket tunnel: @tollgate/proxy calls it when the tunnel closes), which no onResponse
   * hook sees. Status `reply.statusCode`, duration `reply.elapsedTime` (from the request's
   * start until this call); with `aborted`, status 499 and `aborted: true`, as for a client
   * that went away. A request already logged (a second call included) is not logged again.
   */
  recordHijacked: (request: FastifyRequest, reply: FastifyReply, aborted?: boolean) => void
}

/** Per-route state, computed once per route (in `onRoute`, or on its first request). */
interface RouteState {
  /** `false` for `config.metrics: false` (the gateway's own endpoints). */
  readonly counted: boolean
  /** The `route` label; resolved on the first request with `routeLabel()`. */
  label: string | undefined
  /** Label children by method, then status. */
  readonly series: Map<string, Map<number, Series>>
}

interface Series {
  readonly requests: CounterSeries
  readonly duration: HistogramSeries
}

const kRouteState = Symbol('tollgate.metrics.route')
const kError = Symbol('tollgate.metrics.error')
const kReply = Symbol('tollgate.metrics.reply')
const kLogged = Symbol('tollgate.metrics.logged')
const MESSAGE = 'request completed'
/** The status logged and counted for a request whose client went away before its answer (nginx's). */
const CLIENT_CLOSED = 499

type ConfigWithState = Record<PropertyKey, unknown> & { [kRouteState]?: RouteState }
type RequestWithError = FastifyRequest & { [kError]?: Error, [kReply]?: FastifyReply | null, [kLogged]?: true }

function validateRouteConfig (routeOptions: RouteOptions): boolean {
  const value = (routeOptions.config as { metrics?: unknown } | undefined)?.metrics
  if (value !== undefined && typeof value !== 'boolean') {
    throw new InvalidRouteConfigError(`${String(routeOptions.method)} ${routeOptions.url}`, JSON.stringify(value))
  }
  return value !== false
}

/**
 * Whether Fastify's own per-request lines are off: `disableRequestLogging: true`, or (Fastify
 * 5.12+) a `logController` made with it. Read defensively: the controller is internal.
 */
function fastifyRequestLoggingDisabled (fastify: FastifyInstance): boolean {
  if (fastify.initialConfig.disableRequestLogging === true) return true
  const symbol = Object.getOwnPropertySymbols(fastify).find((candidate) => candidate.description === 'fastify.logController')
  if (symbol === undefined) return false
  const controller = (fastify as unknown as Record<symbol, { disableRequestLogging?: unknown } | undefined>)[symbol]
  return controller?.disableRequestLogging === true || typeof controller?.disableRequestLogging === 'function'
}

function newState (counted: boolean): RouteState {
  return { counted, label: undefined, series: new Map() }
}

const plugin: FastifyPluginAsync<TollgateMetricsOptions> = async (fastify, rawOptions) => {
  const options: ResolvedOptions = resolveOptions(rawOptions)
  // A second registration would count every request twice (and Fastify would refuse its
  // decorator with a bare FST_ERR_DEC_ALREADY_PRESENT): say so in our terms.
  if (fastify.hasDecorator('tollgateMetrics')) {
    throw new InvalidOptionError('already registered on this instance or a parent: register it once per app (scopes inherit it)')
  }
  const log = fastify.log.child({ plugin: '@tollgate/metrics' })
  const registry = options.registry ?? new Registry()
  const set = createMetricSet(registry, options.buckets, options.defaultMetrics)
  listen(tollgateRuntime(fastify).events, set)

  const scrape = async (): Promise<string> => await registry.metrics()

  // States of routes registered before this plugin, and of 404 handlers, keyed by their config.
  const lateStates = new WeakMap<object, RouteState>()
  const unmatchedState = newState(true)

  fastify.addHook('onRoute', (routeOptions) => {
    const counted = validateRouteConfig(routeOptions)
    // A copy: one config object may be shared by several routes with different labels.
    const config: ConfigWithState = { ...(routeOptions.config as ConfigWithState | undefined) }
    config[kRouteState] = newState(counted)
    routeOptions.config = config as typeof routeOptions.config
  })

  function stateOf (request: FastifyRequest): RouteState {
    const config = request.routeOptions.config as unknown as ConfigWithState | undefined
    if (config === undefined || config === null) return unmatchedState
    let state = config[kRouteState]
    if (state === undefined) {
      state = lateStates.get(config)
      if (state === undefined) {
        state = newState(config.metrics !== false)
        lateStates.set(config, state)
      }
    }
    if (state.label === undefined) state.label = routeLabel(request)
    return state
  }

  function seriesOf (state: RouteState, method: string, status: number): Series {
    let byStatus = state.series.get(method)
    if (byStatus === undefined) {
      byStatus = new Map()
      state.series.set(method, byStatus)
    }
    let series = byStatus.get(status)
    if (series === undefined) {
      const labels = [state.label ?? 'unmatched', method, String(status)] as const
      series = { requests: set.requests.labels(...labels), duration: set.requestDuration.labels(...labels) }
      byStatus.set(status, series)
    }
    return series
  }

  const requestIdHeader = options.requestIdHeader
  const requestLogs = options.requestLogs
  if (requestLogs) fastify.decorateRequest(kReply, null)
  // One hook for both jobs: a hook stage costs more than the two statements.
  if (requestIdHeader !== false && requestLogs) {
    fastify.addHook('onRequest', (request, reply, done) => {
      reply.header(requestIdHeader, request.id);
      (request as RequestWithError)[kReply] = reply
      done()
    })
  } else if (requestIdHeader !== false) {
    fastify.addHook('onRequest', (request, reply, done) => {
      reply.header(requestIdHeader, request.id)
      done()
    })
  } else if (requestLogs) {
    fastify.addHook('onRequest', (request, reply, done) => {
      (request as RequestWithError)[kReply] = reply
      done()
    })
  }

  if (requestLogs) {
    if (!fastifyRequestLoggingDisabled(fastify)) {
      log.warn('requestLogs is on but Fastify\'s own request logging is too: set disableRequestLogging: true for one line per request')
    }
    fastify.addHook('onError', (request, _reply, error, done) => {
      (request as RequestWithError)[kError] = error
      done()
    })
    // A request whose client goes away before the answer never finishes its response, so
    // onResponse never runs for it: its one line (status 499, `aborted: true`) and its count
    // are made here, with the reply the onRequest hook above kept (a declared slot: one store).
    // `destroyed`: an answer ended on a connection already cut (the gateway's shutdown deadline
    // cuts every connection) counts as finished to Node, yet never emits 'finish'.
    fastify.addHook('onRequestAbort', (request, done) => {
      const reply = (request as RequestWithError)[kReply]
      // Not for a request already logged (a hijacked reply handed to recordHijacked).
      if (reply !== null && reply !== undefined && (reply.raw.destroyed || !reply.raw.writableFinished) && (request as RequestWithError)[kLogged] !== true) {
        (request as RequestWithError)[kLogged] = true
        const state = stateOf(request)
        const milliseconds = reply.elapsedTime
        count(state, request.method, CLIENT_CLOSED, milliseconds)
        logRequest(request, state, CLIENT_CLOSED, milliseconds, true)
      }
      done()
    })
  }

  function count (state: RouteState, method: string, status: number, milliseconds: number): void {
    if (!state.counted) return
    const series = seriesOf(state, method, status)
    series.requests.inc()
    series.duration.observe(milliseconds / 1000)
  }

  fastify.addHook('onResponse', (request, reply, done) => {
    // Already logged and counted as aborted (a response that still finished later).
    if ((request as RequestWithError)[kLogged] === true) {
      done()
      return
    }
    const state = stateOf(request)
    const status = reply.statusCode
    const milliseconds = reply.elapsedTime
    count(state, request.method, status, milliseconds)
    if (requestLogs) logRequest(request, state, status, milliseconds, false)
    done()
  })

  function logRequest (request: FastifyRequest, state: RouteState, status: number, milliseconds: number, aborted: boolean): void {
    const logger = request.log
    const level = state.counted ? 'info' : 'debug'
    if (!(logger as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.(level)) return
    const line: Record<string, unknown> = {
      route: state.label,
      method: request.method,
      url: redactUrl(request.url),
      ip: request.ip,
      statusCode: status,
      responseTime: milliseconds
    }
    const target = (request as { tollgateTarget?: unknown }).tollgateTarget
    if (typeof target === 'string' && target.length > 0) line.target = target
    const traceparent = request.headers.traceparent
    if (traceparent !== undefined) {
      const parsed = parseTraceparent(traceparent)
      if (parsed !== null) line.traceId = parsed.traceId
    }
    const error = (request as RequestWithError)[kError]
    if (error !== undefined) line.err = error
    if (aborted) line.aborted = true
    logger[level](line, MESSAGE)
  }

  if (options.path !== false) {
    const path = options.path
    if (options.port === undefined) {
      // Keys of the other Tollgate plugins: not typed here, so that this package stands alone.
      const config: Record<string, unknown> = { auth: false, rateLimit: false, metrics: false }
      fastify.route({
        method: 'GET',
        url: path,
        config,
        handler: async (_request, reply) => {
          let body: string
          try {
            body = await scrape()
          } catch (cause) {
            throw new ScrapeError({ cause })
          }
          return await reply.type(registry.contentType).send(body)
        }
      })
    } else {
      serveSeparately(fastify, options, path, registry, log)
    }
  }

  let server: Server | null = null
  const decorator: TollgateMetricsDecorator = {
    registry,
    metrics: set,
    scrape,
    address: () => {
      const address = server?.address()
      return typeof address === 'object' && address !== null ? address : null
    },
    recordUnrouted: (request, reply) => {
      unmatchedState.label ??= 'unmatched'
      count(unmatchedState, request.method, reply.statusCode, reply.elapsedTime)
      if (requestLogs) logRequest(request, unmatchedState, reply.statusCode, reply.elapsedTime, false)
    },
    recordHijacked: (request, reply, aborted = false) => {
      const marked = request as RequestWithError
      if (marked[kLogged] === true) return
      marked[kLogged] = true
      const state = stateOf(request)
      const status = aborted ? CLIENT_CLOSED : reply.statusCode
      const milliseconds = reply.elapsedTime
      count(state, request.method, status, milliseconds)
      if (requestLogs) logRequest(request, state, status, milliseconds, aborted)
    }
  }
  fastify.decorate('tollgateMetrics', decorator)

  function serveSeparately (app: FastifyInstance, resolved: ResolvedOptions, path: string, reg: Registry, logger: typeof log): void {
    app.addHook('onReady', async () => {
      const listener = createServer((req, res) => {
        const url = req.url ?? '/'
        const queryAt = url.indexOf('?')
        const pathname = queryAt === -1 ? url : url.slice(0, queryAt)
        if (pathname !== path || (req.method !== 'GET' && req.method !== 'HEAD')) {
          res.writeHead(pathname === path ? 405 : 404, pathname === path ? { allow: 'GET, HEAD', 'content-type': 'application/json' } : { 'content-type': 'application/json' })
          res.end(pathname === path
            ? '{"statusCode":405,"error":"Method Not Allowed","message":"Method Not Allowed"}'
            : '{"statusCode":404,"error":"Not Found","message":"Not Found"}')
          return
        }
        reg.metrics().then((body) => {
          res.writeHead(200, { 'content-type': reg.contentType, 'content-length': Buffer.byteLength(body) })
          res.end(req.method === 'HEAD' ? undefined : body)
        }, (cause: unknown) => {
          logger.error({ err: new ScrapeError({ cause }) }, 'metrics collection failed')
          res.writeHead(500, { 'content-type': 'application/json' })
          res.end('{"statusCode":500,"error":"Internal Server Error","message":"metrics collection failed"}')
        })
      })
      await new Promise<void>((resolve, reject) => {
        listener.once('error', (cause) => { reject(new ListenError(`${resolved.host}:${String(resolved.port)}`, { cause })) })
        listener.listen(resolved.port, resolved.host, () => { resolve() })
      })
      server = listener
      const bound = listener.address() as AddressInfo
      logger.info({ address: bound.address, port: bound.port, path }, 'metrics listening')
    })
    app.addHook('onClose', async () => {
      const listener = server
      if (listener === null) return
      server = null
      await new Promise<void>((resolve) => {
        listener.close(() => { resolve() })
        listener.closeAllConnections()
      })
    })
  }
}

export default plugin
