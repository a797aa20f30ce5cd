import type { FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, preValidationHookHandler, RouteHandlerMethod } from 'fastify'
import fp from 'fastify-plugin'
import { pathProblem, requestProblems, tollgateRuntime, type RequestValidators, type TollgateEvents } from '@tollgate/common'
import { BadGatewayError, BadPathError, MethodNotAllowedError, NoResponderError, RequestValidationError } from './errors.js'
import { METHODS, resolveOptions, type MicroservicesOptions, type ResolvedOptions, type ResolvedPattern, type ResolvedUpstream } from './options.js'
import { TcpClient } from './transport/tcp.js'
import { targetOf, type TransportClient } from './transport/types.js'

export const PLUGIN_NAME = '@tollgate/microservices'

/** Seconds a 503 asks the client to wait (`Retry-After`). */
const RETRY_AFTER = '5'

interface InnerOptions {
  resolved: ResolvedOptions
  clients: Map<string, TransportClient>
}

// The Redis and NATS clients (ioredis, nats: some 8 MB of memory between them) are loaded
// only by an app with an upstream of that transport.
async function clientFor (upstream: ResolvedUpstream, channels: readonly string[]): Promise<TransportClient> {
  switch (upstream.transport) {
    case 'nest-tcp':
      return new TcpClient({ targets: upstream.targets, connectTimeout: upstream.connectTimeout })
    case 'nest-redis': {
      const { RedisClient } = await import('./transport/redis.js')
      return new RedisClient({ url: upstream.targets[0]!, connectTimeout: upstream.connectTimeout, channels })
    }
    case 'nest-nats': {
      const { NatsClient } = await import('./transport/nats.js')
      return new NatsClient({ servers: upstream.targets, connectTimeout: upstream.connectTimeout })
    }
  }
}

function identityOf (request: FastifyRequest): unknown {
  const identity = (request as { tollgateIdentity?: unknown }).tollgateIdentity
  return identity ?? null
}

/** The message's `data`, as the pattern's `data` option says. */
function dataFor (pattern: ResolvedPattern, request: FastifyRequest): unknown {
  const params = { ...(request.params as Record<string, string>) }
  const query = { ...(request.query as Record<string, unknown>) }
  const body = request.body === undefined ? null : request.body
  switch (pattern.data) {
    case 'body': return body
    case 'params': return { ...query, ...params }
    case 'query': return query
    case 'envelope': return { params, query, body, identity: identityOf(request), requestId: request.id }
  }
}

function handlerFor (pattern: ResolvedPattern, upstream: ResolvedUpstream, client: TransportClient, events: TollgateEvents): RouteHandlerMethod {
  const name = upstream.name
  const timeout = upstream.timeout
  const serialize = pattern.serialize
  const observe = (target: string | undefined, status: number, started: number): void => {
    if (target === undefined || !events.hasListeners('upstreamResponse')) return
    events.emit('upstreamResponse', { upstream: name, target, status, seconds: (performance.now() - started) / 1000 })
  }
  const failed = (request: FastifyRequest, reply: FastifyReply, error: unknown, started: number): never => {
    const code = (error as { code?: unknown } | null)?.code
    const known = error instanceof Error && typeof code === 'string' && code.startsWith('TOLLGATE_MICROSERVICES_')
    const failure = known ? error as Error & { statusCode: number } : new BadGatewayError({ cause: error as Error })
    const target = targetOf(error)
    if (target !== undefined) request.tollgateTarget = target
    observe(target, failure.statusCode, started)
    if (failure instanceof NoResponderError) reply.header('retry-after', RETRY_AFTER)
    // At debug, as the proxy's failed attempts: the request's one line carries the error.
    if (failure.statusCode >= 500) request.log.debug({ err: failure, upstream: name, target, pattern: pattern.route }, 'microservice call failed')
    throw failure
  }

  if (pattern.kind === 'event') {
    return async function tollgateEventHandler (request, reply) {
      const started = performance.now()
      let target: string
      try {
        target = await client.emit(pattern.route, dataFor(pattern, request), timeout)
      } catch (error) {
        return failed(request, reply, error, started)
      }
      request.tollgateTarget = target
      observe(target, 202, started)
      return await reply.code(202).send()
    }
  }
  return async function tollgateMessageHandler (request, reply) {
    const started = performance.now()
    let result
    try {
      result = await client.send(pattern.route, dataFor(pattern, request), timeout)
    } catch (error) {
      return failed(request, reply, error, started)
    }
    request.tollgateTarget = result.target
    const { values } = result
    if (values.length === 0 && !pattern.array) {
      observe(result.target, 204, started)
      return await reply.code(204).send()
    }
    observe(result.target, 200, started)
    const body = pattern.array || values.length > 1 ? values : values[0]
    const json = serialize === null ? JSON.stringify(body) : serialize(body)
    return await reply.code(200).type('application/json; charset=utf-8').send(json)
  }
}

/**
 * The `preValidation` hook of a pattern with `validate`: after auth and rate limits, before
 * anything is sent, every part with a schema is checked and the request is refused with
 * 400 listing every problem.
 */
function validationHook (validators: RequestValidators): preValidationHookHandler {
  return function tollgateMicroservicesValidate (request, _reply, done) {
    const problems = requestProblems(validators, request, request.body)
    if (problems.length === 0) {
      done()
      return
    }
    const error = new RequestValidationError(problems.join('; '))
    ;(error as Error & { problems?: string[] }).problems = problems
    done(error)
  }
}

/** Refuses paths not in normal form and methods the path is not mapped for, before auth and rate limits. */
function guardFor (allowed: ReadonlySet<string>, allow: string, hasParams: boolean) {
  return function tollgateMicroservicesGuard (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const problem = pathProblem(request.raw.url!)
    if (problem !== null) {
      done(new BadPathError(problem))
      return
    }
    if (hasParams) {
      // The router matches `/users/` to `/users/:id` with an empty id: no resource is named.
      const params = request.params as Record<string, string>
      for (const name in params) {
        if (params[name] === '') {
          reply.callNotFound()
          return
        }
      }
    }
    if (!allowed.has(request.raw.method!)) {
      reply.header('allow', allow)
      done(new MethodNotAllowedError(request.raw.method!))
      return
    }
    done()
  }
}

type JsonParser = (request: FastifyRequest, body: string, done: (err: Error | null, body?: unknown) => void) => void

/** Fastify's own JSON parser (`__proto__` and `constructor.prototype` keys refused), with an empty body read as `null`. */
function jsonParserFrom (parse: JsonParser): JsonParser {
  return function jsonParser (request, body, done) {
    if (body.length === 0) done(null, null)
    else parse(request, body, done)
  }
}

/** The encapsulated part: routes and the JSON-only body parser stay in this context. */
const routesPlugin: FastifyPluginAsync<InnerOptions> = async (fastify, { resolved, clients }) => {
  // `data` is JSON: other content types get 415 here, and nowhere else in the app.
  const jsonParser = jsonParserFrom(fastify.getDefaultJsonParser('error', 'error') as JsonParser)
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, jsonParser)
  fastify.addContentTypeParser(/^application\/[a-z0-9.+-]*\+json$/, { parseAs: 'string' }, jsonParser)

  const events = fastify.tollgate.events
  // Methods mapped per Fastify URL, across routes, for the 405 answer of the others.
  const byUrl = new Map<string, Set<string>>()
  for (const route of resolved.routes) {
    for (const pattern of route.patterns) {
      const methods = byUrl.get(pattern.url) ?? new Set<string>()
      methods.add(pattern.method)
      if (pattern.method === 'GET') methods.add('HEAD')
      byUrl.set(pattern.url, methods)
    }
  }
  const guards = new Map([...byUrl].map(([url, methods]) => [url, guardFor(methods, [...methods].join(', '), url.includes(':'))]))

  const configured = new Set<string>()
  for (const route of resolved.routes) {
    const upstream = resolved.upstreams.get(route.upstream)!
    const client = clients.get(route.upstream)!
    const label = route.prefix === '' ? '/' : route.prefix
    for (const pattern of route.patterns) {
      const config = {
        ...route.config,
        tollgate: { route: label, upstream: route.upstream },
        tollgateMicroservices: { upstream: route.upstream, transport: upstream.transport, kind: pattern.kind, pattern: pattern.route }
      }
      fastify.route({
        method: pattern.method,
        url: pattern.url,
        config,
        onRequest: guards.get(pattern.url)!,
        ...(pattern.validators === null ? {} : { preValidation: validationHook(pattern.validators) }),
        handler: handlerFor(pattern, upstream, client, events)
      })
    }
    for (const url of new Set(route.patterns.map((pattern) => pattern.url))) {
      if (configured.has(url)) continue
      configured.add(url)
      const others = [...METHODS, 'QUERY'].filter((method) => !byUrl.get(url)!.has(method))
      if (others.length === 0) continue
      // Other methods on a mapped path: 405 with Allow, answered by the guard.
      fastify.route({
        method: others,
        url,
        config: { ...route.config, tollgate: { route: label, upstream: route.upstream } },
        onRequest: guards.get(url)!,
        handler: async () => { throw new MethodNotAllowedError('') }
      })
    }
  }
}

const encapsulated = fp(routesPlugin, { fastify: '5.x', name: `${PLUGIN_NAME}/routes`, encapsulate: true })

/**
 * The outer part is not encapsulated, so the shared runtime, its readiness checks and
 * the `request.tollgateTarget` decorator land where the other Tollgate plugins see them.
 */
export const tollgateMicroservices: FastifyPluginAsync<MicroservicesOptions> = async (fastify, options) => {
  const resolved = resolveOptions(options)
  const runtime = tollgateRuntime(fastify)
  if (!fastify.hasRequestDecorator('tollgateTarget')) fastify.decorateRequest('tollgateTarget', null)

  const clients = new Map<string, TransportClient>()
  for (const [name, upstream] of resolved.upstreams) {
    const channels = [...new Set(resolved.routes.filter((route) => route.upstream === name).flatMap((route) => route.patterns.map((pattern) => pattern.route)))]
    const client = await clientFor(upstream, channels)
    clients.set(name, client)
    runtime.addReadinessCheck(`upstream:${name}`, async () => await client.readiness())
  }

  fastify.addHook('onReady', async () => {
    for (const client of clients.values()) client.start()
  })
  fastify.addHook('onClose', async () => {
    await Promise.all([...clients.values()].map(async (client) => { await client.close() }))
  })

  await fastify.register(encapsulated, { resolved, clients })
}
