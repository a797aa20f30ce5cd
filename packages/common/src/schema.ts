import { AjvCompiler, type ErrorObject } from '@fastify/ajv-compiler'

/** The parts of a request a schema can describe (Fastify's names for them). */
export type RequestPart = 'params' | 'querystring' | 'headers' | 'body'

/** JSON Schemas for one method's request; every part is optional. */
export interface RequestSchemas {
  params?: Record<string, unknown>
  querystring?: Record<string, unknown>
  headers?: Record<string, unknown>
  body?: Record<string, unknown>
}

/** A compiled Ajv validator; `errors` holds the last call's problems. */
export type RequestValidator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null }

/** The validators of one method's request, `null` for a part without a schema. */
export type RequestValidators = Readonly<Record<RequestPart, RequestValidator | null>>

export const REQUEST_PARTS: readonly RequestPart[] = ['params', 'querystring', 'headers', 'body']
const PART_SET: ReadonlySet<string> = new Set(REQUEST_PARTS)

/*
 * Fastify's own validator compiler (@fastify/ajv-compiler: Ajv 8 with ajv-formats), with
 * two changes to Fastify's defaults. `allErrors`, so a client learns every problem at once
 * (bodies are bounded by `bodyLimit`, which bounds the work too). No `removeAdditional`
 * and no `useDefaults`: what the gateway checked is what it forwards, so a validator that
 * quietly dropped an unknown property would let the upstream receive it anyway; with
 * `additionalProperties: false` the request is refused instead. Query strings, params
 * and headers arrive as strings and are coerced (`?limit=10` satisfies `type: integer`)
 * only for the check: callers validate copies, and forward what the client sent.
 */
const factory = AjvCompiler()
// Ajv's strict mode stays on (a misspelt keyword fails registration rather than silently
// checking nothing); `example`, common in OpenAPI-minded schemas, is accepted as an annotation.
const common = { allErrors: true, removeAdditional: false, useDefaults: false, logger: false as const, strictTypes: false, strictTuples: false, keywords: ['example'] }
const compileBody = factory({}, { customOptions: { ...common, coerceTypes: false } })
const compileStrings = factory({}, { customOptions: { ...common, coerceTypes: 'array' } })

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Header names are matched lower-case, as Node delivers them. */
function lowerCaseHeaders (schema: Record<string, unknown>): Record<string, unknown> {
  const out = { ...schema }
  if (isObject(schema.properties)) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([name, value]) => [name.toLowerCase(), value]))
  }
  if (Array.isArray(schema.required)) out.required = schema.required.map((name) => typeof name === 'string' ? name.toLowerCase() : name)
  return out
}

/**
 * Compiles one method's request schemas (`{ body, querystring, params, headers }`) once,
 * at registration. Throws `new fail(message)` naming the option path of the first
 * problem: an unknown part, a part that is not an object, a schema Ajv refuses.
 */
export function compileRequestSchemas (schemas: unknown, method: string, path: string, fail: new (message: string) => Error): RequestValidators {
  if (!isObject(schemas)) throw new fail(`${path}: must be an object with body, querystring, params or headers`)
  const compiled: Record<RequestPart, RequestValidator | null> = { params: null, querystring: null, headers: null, body: null }
  for (const [part, schema] of Object.entries(schemas)) {
    if (!PART_SET.has(part)) throw new fail(`${path}.${part}: unknown key (use ${REQUEST_PARTS.join(', ')})`)
    if (!isObject(schema)) throw new fail(`${path}.${part}: must be a JSON Schema object`)
    try {
      const compile = part === 'body' ? compileBody : compileStrings
      compiled[part as RequestPart] = compile({ schema: part === 'headers' ? lowerCaseHeaders(schema) : schema, method, url: path, httpPart: part }) as RequestValidator
    } catch (error) {
      throw new fail(`${path}.${part}: invalid JSON Schema (${(error as Error).message})`)
    }
  }
  return Object.freeze(compiled)
}

/** `/items/0/title` under `body` as `body.items[0].title`. */
function problemPath (part: RequestPart, pointer: string, child?: string): string {
  let out: string = part
  const segments = pointer === '' ? [] : pointer.slice(1).split('/')
  if (child !== undefined) segments.push(child)
  for (const raw of segments) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    out += /^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`
  }
  return out
}

/** Ajv errors as `path: message` lines (`body.title: must be string`). */
export function describeErrors (part: RequestPart, errors: readonly ErrorObject[]): string[] {
  const problems: string[] = []
  for (const error of errors) {
    const params = error.params as Record<string, unknown>
    if (error.keyword === 'required') problems.push(`${problemPath(part, error.instancePath, String(params.missingProperty))}: is required`)
    else if (error.keyword === 'additionalProperties') problems.push(`${problemPath(part, error.instancePath, String(params.additionalProperty))}: is not allowed`)
    else problems.push(`${problemPath(part, error.instancePath)}: ${error.message ?? 'is invalid'}`)
  }
  return problems
}

/**
 * Checks the parts that have a validator and returns every problem as `path: message`.
 * Coercion rewrites the data it checks, so each part is checked on a shallow copy and the
 * request keeps what the client sent. `body` is checked as given (it is not coerced).
 */
export function requestProblems (validators: RequestValidators, request: { params: unknown, query: unknown, headers: unknown }, body: unknown): string[] {
  const problems: string[] = []
  const check = (part: RequestPart, data: unknown): void => {
    const validator = validators[part]
    if (validator === null || validator(data)) return
    problems.push(...describeErrors(part, validator.errors ?? []))
  }
  if (validators.params !== null) check('params', { ...(request.params as object) })
  if (validators.querystring !== null) check('querystring', { ...(request.query as object) })
  if (validators.headers !== null) check('headers', { ...(request.headers as object) })
  if (validators.body !== null) check('body', body)
  return problems
}
