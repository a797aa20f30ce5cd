import type { Manifest, RouteSection } from './manifest/types.js'
import { addPatternPaths } from './microservices.js'
import { contractOptions } from './manifest/contracts.js'

type Schema = Record<string, unknown>
/** An operation's request and response schemas (issue 11), per method and per status. */
export interface OperationContract { validate?: Record<string, Record<string, Schema | undefined>>, response?: Record<string, Schema | undefined> }

/** Parameters (`in: path | query | header`) from an object schema's properties. */
function parametersOf (schema: Schema | undefined, where: 'path' | 'query' | 'header'): Array<Record<string, unknown>> {
  const properties = schema?.properties
  if (typeof properties !== 'object' || properties === null) return []
  const required = Array.isArray(schema?.required) ? schema.required as string[] : []
  return Object.entries(properties as Record<string, Schema>).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.includes(name),
    schema: property
  }))
}

/** Adds a route's validation and response schemas (issue 11) to one operation. */
function addContract (op: Record<string, unknown>, contract: OperationContract, method: string): void {
  const rules = contract.validate?.[method.toUpperCase()] ?? (method === 'head' ? contract.validate?.GET : undefined)
  if (rules !== undefined) {
    const parameters = [
      ...((op.parameters as Array<Record<string, unknown>> | undefined) ?? []).filter((p) => rules.params === undefined || p.in !== 'path'),
      ...parametersOf(rules.params, 'path'),
      ...parametersOf(rules.querystring, 'query'),
      ...parametersOf(rules.headers, 'header')
    ]
    if (parameters.length > 0) op.parameters = parameters
    if (rules.body !== undefined) op.requestBody = { required: true, content: { 'application/json': { schema: rules.body } } }
  }
  const responses = op.responses as Record<string, unknown>
  for (const [status, schema] of Object.entries(contract.response ?? {})) {
    if (schema === undefined) continue
    responses[status === '2xx' ? '2XX' : status] = {
      description: 'The upstream\'s JSON answer, reduced to these fields by the gateway.',
      content: { 'application/json': { schema } }
    }
  }
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
const errorResponse = { $ref: '#/components/responses/Error' }

function security (manifest: Manifest, route: RouteSection): Array<Record<string, string[]>> | undefined {
  if (route.auth === false) return []
  const configured = [
    manifest.auth?.jwt !== undefined ? 'jwt' : undefined,
    manifest.auth?.apiKeys !== undefined ? 'apiKey' : undefined,
    manifest.auth?.forward !== undefined ? 'forward' : undefined
  ].filter((m): m is string => m !== undefined)
  const methods = route.auth?.methods ?? configured
  return methods.map((method) => ({ [method === 'forward' ? 'forwardAuth' : method === 'jwt' ? 'bearerAuth' : 'apiKeyAuth']: [] }))
}

function operation (manifest: Manifest, route: RouteSection, method: string, withPath: boolean, contract: OperationContract = {}): Record<string, unknown> {
  const limit = route.rateLimit === false ? undefined : route.rateLimit ?? manifest.rateLimit?.default
  const notes = [
    `Proxied to upstream \`${route.upstream}\`${route.rewritePrefix === undefined ? ' with the prefix removed' : ` at \`${route.rewritePrefix === '' ? '/' : route.rewritePrefix}\``}.`,
    route.auth === false ? 'Public.' : `Requires authentication${route.auth?.roles !== undefined ? `; roles (any of): ${route.auth.roles.join(', ')}` : ''}${route.auth?.permissions !== undefined ? `; permissions (all of): ${route.auth.permissions.join(', ')}` : ''}.`,
    limit === undefined ? undefined : `Rate limit: ${limit.max} per ${String(limit.window)} by ${limit.by ?? 'ip'}.`,
    route.websocket === true && method === 'get' ? 'Accepts WebSocket upgrades.' : undefined
  ].filter((n) => n !== undefined)
  const responses: Record<string, unknown> = {
    default: { description: 'The upstream\'s response, passed through.' },
    400: errorResponse,
    404: errorResponse,
    405: errorResponse,
    502: errorResponse,
    503: errorResponse,
    504: errorResponse
  }
  if (route.auth !== false) Object.assign(responses, { 401: errorResponse, 403: errorResponse })
  if (limit !== undefined) responses[429] = errorResponse
  if (['post', 'put', 'patch'].includes(method)) responses[413] = errorResponse
  const op: Record<string, unknown> = {
    tags: [route.upstream],
    summary: route.description ?? `${method.toUpperCase()} ${route.prefix}${withPath ? '/{path}' : ''}`,
    description: notes.join(' '),
    security: security(manifest, route),
    responses
  }
  if (withPath) {
    op.parameters = [{ name: 'path', in: 'path', required: true, allowReserved: true, schema: { type: 'string' }, description: 'The rest of the path, forwarded as is.' }]
  }
  if (route.path !== undefined) {
    op.parameters = [...route.path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => ({ name: match[1], in: 'path', required: true, schema: { type: 'string' } }))
  }
  addContract(op, contract, method)
  return op
}

/** The OpenAPI 3 document of the gateway's routes, built from the manifest (never naming upstream addresses). */
export function openApiDocument (manifest: Manifest, version: string, baseDir = process.cwd()): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  manifest.routes.forEach((route, i) => {
    const methods = (route.methods ?? ALL_METHODS.filter((m) => m !== 'HEAD')).filter((m) => m !== 'HEAD').map((m) => m.toLowerCase())
    const contract = contractOptions(route, `routes[${i}]`, baseDir, []) as OperationContract
    const forms: ReadonlyArray<readonly [string, boolean]> = route.path === undefined
      ? [[route.prefix, false], [`${route.prefix}/{path}`, true]]
      : [[`${route.prefix}${route.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')}`, false]]
    for (const [path, withPath] of forms) {
      paths[path] = Object.fromEntries(methods.map((method) => [method, operation(manifest, route, method, withPath, contract)]))
    }
  })
  addPatternPaths(paths, manifest, (route) => security(manifest, route), baseDir, addContract)
  const securitySchemes: Record<string, unknown> = {}
  if (manifest.auth?.jwt !== undefined) securitySchemes.bearerAuth = { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }
  if (manifest.auth?.apiKeys !== undefined) securitySchemes.apiKeyAuth = { type: 'apiKey', in: 'header', name: manifest.auth.apiKeys.header ?? 'x-api-key' }
  if (manifest.auth?.forward !== undefined) securitySchemes.forwardAuth = { type: 'http', scheme: 'bearer', description: 'Checked by the forward-auth service.' }
  return {
    openapi: '3.0.3',
    info: { title: 'Tollgate gateway', version, description: 'Routes served by this Tollgate gateway.' },
    tags: Object.keys(manifest.upstreams).map((name) => ({ name, description: `Routes proxied to the ${name} upstream` })),
    paths,
    components: {
      securitySchemes,
      responses: {
        Error: {
          description: 'An error answered by the gateway itself.',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['statusCode', 'error', 'message'],
                properties: {
                  statusCode: { type: 'integer' },
                  error: { type: 'string' },
                  message: { type: 'string' },
                  requestId: { type: 'string' }
                }
              }
            }
          }
        }
      }
    }
  }
}
