import type { FastifyInstance } from 'fastify'
import tollgateMicroservices, { resolveOptions, type MicroserviceRouteOptions, type MicroserviceUpstreamOptions, type PatternOptions } from '@tollgate/microservices'
import { loadSchema } from './manifest/contracts.js'
import type { OperationContract } from './openapi.js'
import type { Manifest, PatternSection, RouteSection, SchemaSource, UpstreamSection } from './manifest/types.js'

/** Transports reaching NestJS microservices; `http` (the default) is the proxy's. */
export const MESSAGE_TRANSPORTS = ['nest-tcp', 'nest-redis', 'nest-nats'] as const

/** Upstream keys that only mean something to the HTTP proxy. */
const HTTP_ONLY_UPSTREAM_KEYS = ['balance', 'healthCheck', 'retries', 'circuitBreaker'] as const
/** Route keys the microservices plugin does not honour: refused rather than silently ignored. */
const HTTP_ONLY_ROUTE_KEYS = ['rewritePrefix', 'websocket', 'stripCredentials', 'path', 'rewrite', 'responseBufferLimit', 'requestHeaders', 'responseHeaders'] as const

export function transportOf (upstream: UpstreamSection | undefined): string {
  return upstream?.transport ?? 'http'
}

export function isHttpRoute (manifest: Manifest, route: RouteSection): boolean {
  return route.patterns === undefined && transportOf(manifest.upstreams[route.upstream]) === 'http'
}

/** The upstreams the HTTP proxy serves. */
export function httpUpstreams (manifest: Manifest): Manifest['upstreams'] {
  return Object.fromEntries(Object.entries(manifest.upstreams).filter(([, upstream]) => transportOf(upstream) === 'http'))
}

function pluginUpstream (upstream: UpstreamSection): MicroserviceUpstreamOptions {
  return {
    transport: upstream.transport as MicroserviceUpstreamOptions['transport'],
    targets: upstream.targets.map((target) => typeof target === 'string' ? target : target.url),
    ...(upstream.timeout === undefined ? {} : { timeout: upstream.timeout }),
    ...(upstream.connectTimeout === undefined ? {} : { connectTimeout: upstream.connectTimeout })
  }
}

function loadSchemas (sources: Record<string, SchemaSource | undefined>, at: string, baseDir: string, problems: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(sources).map(([key, source]) => [key, source === undefined ? undefined : loadSchema(source, baseDir, `${at}.${key}`, problems)]))
}

/**
 * A manifest pattern as the plugin takes it, with its contract: the pattern's own
 * `validate` and `response`, else the route's (`validate` of the pattern's method;
 * `response` for message patterns only, an event's 202 having no body). `$file`
 * schemas are read relative to the manifest; problems are pushed as `path: message`.
 */
function pluginPattern (route: RouteSection, routeAt: string, j: number, baseDir: string, problems: string[]): PatternOptions {
  const pattern = route.patterns![j]!
  const at = `${routeAt}.patterns[${j}]`
  const { validate, response, ...rest } = pattern
  const out: Record<string, unknown> = { ...rest }
  if (validate !== undefined) out.validate = loadSchemas(validate, `${at}.validate`, baseDir, problems)
  else if (route.validate?.[pattern.method] !== undefined) out.validate = loadSchemas(route.validate[pattern.method]!, `${routeAt}.validate.${pattern.method}`, baseDir, problems)
  if (response !== undefined) out.response = loadSchemas(response, `${at}.response`, baseDir, problems)
  else if (route.response !== undefined && pattern.event === undefined) out.response = loadSchemas(route.response, `${routeAt}.response`, baseDir, problems)
  return out as unknown as PatternOptions
}

function pluginRoute (route: RouteSection, at: string, config: Record<string, unknown>, baseDir: string, problems: string[]): MicroserviceRouteOptions {
  return {
    prefix: route.prefix,
    upstream: route.upstream,
    ...(route.methods === undefined ? {} : { methods: route.methods }),
    patterns: route.patterns!.map((_pattern, j) => pluginPattern(route, at, j, baseDir, problems)),
    config
  }
}

function pluginMessage (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * Manifest problems of message transports, as `path: message`: targets of the right
 * scheme, no HTTP-only keys, a route with `patterns` on a message upstream and the
 * other way round, and every pattern as the plugin would check it.
 */
export function microserviceProblems (manifest: Manifest, baseDir: string): string[] {
  const problems: string[] = []
  for (const [name, upstream] of Object.entries(manifest.upstreams)) {
    const transport = transportOf(upstream)
    if (transport === 'http') continue
    for (const key of HTTP_ONLY_UPSTREAM_KEYS) {
      if (upstream[key] !== undefined) problems.push(`upstreams.${name}.${key}: only for transport http (this upstream uses ${transport})`)
    }
    upstream.targets.forEach((target, i) => {
      if (typeof target !== 'string' && target.weight !== undefined) problems.push(`upstreams.${name}.targets[${i}].weight: only for transport http`)
    })
    try {
      resolveOptions({ upstreams: { [name]: pluginUpstream(upstream) }, routes: [] })
    } catch (error) {
      problems.push(pluginMessage(error))
    }
  }
  manifest.routes.forEach((route, i) => {
    const at = `routes[${i}]`
    const upstream = manifest.upstreams[route.upstream]
    if (upstream === undefined) return // reported as an unknown upstream
    const transport = transportOf(upstream)
    if (route.patterns === undefined) {
      if (transport !== 'http') problems.push(`${at}.patterns: is required: upstream ${JSON.stringify(route.upstream)} uses transport ${transport}, reached by message patterns, not by proxying`)
      return
    }
    if (transport === 'http') {
      problems.push(`${at}.upstream: upstream ${JSON.stringify(route.upstream)} uses transport http; a route with patterns needs one of ${MESSAGE_TRANSPORTS.join(', ')}`)
      return
    }
    for (const key of HTTP_ONLY_ROUTE_KEYS) {
      if ((route as unknown as Record<string, unknown>)[key] !== undefined) problems.push(`${at}.${key}: not supported on a route with patterns`)
    }
    const found: string[] = []
    const options = pluginRoute(route, at, {}, baseDir, found)
    problems.push(...found)
    if (found.length > 0) return
    try {
      resolveOptions({ upstreams: { [route.upstream]: pluginUpstream(upstream) }, routes: [options] })
    } catch (error) {
      const message = pluginMessage(error)
      // The plugin names this route routes[0]; the manifest knows it as routes[i].
      if (message.startsWith('routes[0]')) problems.push(`${at}${message.slice('routes[0]'.length)}`)
    }
  })
  return problems
}

/**
 * Registers @tollgate/microservices for the routes with patterns, after auth and rate
 * limits (their onRoute hooks then apply to these routes as to proxied ones).
 */
export async function registerMicroservices (app: FastifyInstance, manifest: Manifest, baseDir: string, configFor: (route: RouteSection) => Record<string, unknown>): Promise<void> {
  const routes = manifest.routes.flatMap((route, i) => route.patterns === undefined ? [] : [{ route, at: `routes[${i}]` }])
  if (routes.length === 0) return
  const upstreams = Object.fromEntries(Object.entries(manifest.upstreams)
    .filter(([, upstream]) => transportOf(upstream) !== 'http')
    .map(([name, upstream]) => [name, pluginUpstream(upstream)]))
  // Schema files were checked by manifestProblems, before this.
  await app.register(tollgateMicroservices, { upstreams, routes: routes.map(({ route, at }) => pluginRoute(route, at, configFor(route), baseDir, [])) })
}

/** `/:id/roles` as OpenAPI's `/{id}/roles`. */
function openApiPath (prefix: string, path: string | undefined): string {
  const full = path === undefined || path === '/' ? prefix : `${prefix}${path}`
  return full.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')
}

function patternLabel (pattern: PatternSection): string {
  const value = pattern.pattern ?? pattern.event
  return typeof value === 'string' ? value : JSON.stringify(value)
}

const errorResponse = { $ref: '#/components/responses/Error' }

/**
 * Adds the operations of routes with patterns to an OpenAPI `paths` object: one per
 * mapped method and path, in place of the prefix-wide entries made for proxied routes.
 */
export function addPatternPaths (
  paths: Record<string, Record<string, unknown>>,
  manifest: Manifest,
  security: (route: RouteSection) => unknown,
  baseDir: string,
  addContract: (op: Record<string, unknown>, contract: OperationContract, method: string) => void
): void {
  for (const [i, route] of manifest.routes.entries()) {
    if (route.patterns === undefined) continue
    delete paths[route.prefix]
    delete paths[`${route.prefix}/{path}`]
    const limit = route.rateLimit === false ? undefined : route.rateLimit ?? manifest.rateLimit?.default
    for (const [j, pattern] of route.patterns.entries()) {
      const path = openApiPath(route.prefix, pattern.path)
      const method = pattern.method.toLowerCase()
      const event = pattern.event !== undefined
      const responses: Record<string, unknown> = event
        ? { 202: { description: 'The event was handed to the transport.' } }
        : {
            200: { description: 'The service\'s reply (a JSON array when it answered a stream).', content: { 'application/json': { schema: {} } } },
            204: { description: 'The service answered nothing.' },
            '4XX': { description: 'The service refused the request (an RpcException with a 4xx status), or the gateway did.' }
          }
      Object.assign(responses, { 400: errorResponse, 405: errorResponse, 502: errorResponse, 503: errorResponse, 504: errorResponse })
      if (route.auth !== false) Object.assign(responses, { 401: errorResponse, 403: errorResponse })
      if (limit !== undefined) responses[429] = errorResponse
      const notes = [
        `${event ? 'Emits the event' : 'Sends the message pattern'} \`${patternLabel(pattern)}\` to upstream \`${route.upstream}\` (${transportOf(manifest.upstreams[route.upstream])}), with the ${pattern.data ?? (['POST', 'PUT', 'PATCH'].includes(pattern.method) ? 'body' : 'params')} as data.`,
        route.auth === false ? 'Public.' : 'Requires authentication.',
        limit === undefined ? undefined : `Rate limit: ${limit.max} per ${String(limit.window)} by ${limit.by ?? 'ip'}.`
      ].filter((note) => note !== undefined)
      const op: Record<string, unknown> = {
        tags: [route.upstream],
        summary: pattern.description ?? `${pattern.method} ${path}`,
        description: notes.join(' '),
        security: security(route),
        responses
      }
      const params = [...(pattern.path ?? '').matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => ({ name: match[1], in: 'path', required: true, schema: { type: 'string' } }))
      if (params.length > 0) op.parameters = params
      if (['post', 'put', 'patch'].includes(method) && (pattern.data === undefined || pattern.data === 'body' || pattern.data === 'envelope')) {
        op.requestBody = { required: false, content: { 'application/json': { schema: {} } } }
      }
      const { validate, response } = pluginPattern(route, `routes[${i}]`, j, baseDir, [])
      addContract(op, { ...(validate === undefined ? {} : { validate: { [pattern.method]: { ...validate } } }), ...(response === undefined ? {} : { response }) }, method)
      paths[path] = { ...(paths[path] ?? {}), [method]: op }
    }
  }
}

/** Rows of `tollgate routes` for a route with patterns: one per mapped method and path. */
export function patternRows (manifest: Manifest, route: RouteSection, auth: string, limit: string): string[][] {
  const upstream = manifest.upstreams[route.upstream]
  const targets = upstream?.targets.map((target) => typeof target === 'string' ? target : target.url).join(',') ?? '?'
  return (route.patterns ?? []).map((pattern) => [
    `${route.prefix}${pattern.path === undefined || pattern.path === '/' ? '' : pattern.path} => ${pattern.event !== undefined ? 'event ' : ''}${patternLabel(pattern)}`,
    pattern.method,
    `${route.upstream} (${transportOf(upstream)})`,
    targets,
    auth,
    limit
  ])
}
