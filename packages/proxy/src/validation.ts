import { Readable } from 'node:stream'
import { AjvCompiler, type ErrorObject } from '@fastify/ajv-compiler'
import type { FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify'
import { BodyTooLargeError, InvalidOptionError, RequestValidationError, UnsupportedMediaTypeError } from './errors.js'

/** The parts of a request a schema can describe (Fastify's names for them). */
export type RequestPart = 'params' | 'querystring' | 'headers' | 'body'

/** JSON Schemas for one method's request; every part is optional. */
export interface RequestSchemas {
  params?: Record<string, unknown>
  querystring?: Record<string, unknown>
  headers?: Record<string, unknown>
  body?: Record<string, unknown>
}

/** Per method (`GET`, `POST`, ...): the JSON Schemas a request must satisfy before it is proxied. */
export type ValidateOptions = Record<string, RequestSchemas>

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null }

interface MethodValidators {
  readonly params: Validator | null
  readonly querystring: Validator | null
  readonly headers: Validator | null
  readonly body: Validator | null
}

/** Compiled validators of a route, per upper-case method. */
export type RouteValidation = ReadonlyMap<string, MethodValidators>

const PARTS: readonly RequestPart[] = ['params', 'querystring', 'headers', 'body']
const PART_SET: ReadonlySet<string> = new Set(PARTS)

/*
 * Fastify's own validator compiler (@fastify/ajv-compiler: Ajv 8 with ajv-formats), with
 * two changes to Fastify's defaults. `allErrors`, so a client learns every problem at once
 * (bodies are bounded by `bodyLimit`, which bounds the work too). No `removeAdditional`
 * and no `useDefaults`: the body is forwarded byte for byte, so a validator that quietly
 * dropped an unknown property would let the upstream receive it anyway; with
 * `additionalProperties: false` the request is refused instead. Query strings, params
 * and headers arrive as strings and are coerced (`?limit=10` satisfies `type: integer`)
 * only for the check; the upstream still gets them exactly as the client sent them.
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
 * Compiles a route's `validate` option once, at registration. A schema Ajv refuses fails
 * the registration with the schema's option path.
 */
export function resolveValidation (value: unknown, path: string, methods: ReadonlySet<string> | null, known: readonly string[]): RouteValidation | null {
  if (value === undefined || value === null) return null
  if (!isObject(value)) throw new InvalidOptionError(`${path}: must be an object of methods, e.g. { POST: { body: {...} } }`)
  const out = new Map<string, MethodValidators>()
  for (const [method, schemas] of Object.entries(value)) {
    const at = `${path}.${method}`
    const upper = method.toUpperCase()
    if (upper !== method || !known.includes(upper)) throw new InvalidOptionError(`${at}: must be an upper-case method (${known.join(', ')})`)
    if (methods !== null && !methods.has(upper)) throw new InvalidOptionError(`${at}: the route does not allow ${upper}`)
    if (!isObject(schemas)) throw new InvalidOptionError(`${at}: must be an object with body, querystring, params or headers`)
    const compiled: Record<RequestPart, Validator | null> = { params: null, querystring: null, headers: null, body: null }
    for (const [part, schema] of Object.entries(schemas)) {
      if (!PART_SET.has(part)) throw new InvalidOptionError(`${at}.${part}: unknown key (use ${PARTS.join(', ')})`)
      if (!isObject(schema)) throw new InvalidOptionError(`${at}.${part}: must be a JSON Schema object`)
      try {
        const compile = part === 'body' ? compileBody : compileStrings
        compiled[part as RequestPart] = compile({ schema: part === 'headers' ? lowerCaseHeaders(schema) : schema, method: upper, url: path, httpPart: part }) as Validator
      } catch (error) {
        throw new InvalidOptionError(`${at}.${part}: invalid JSON Schema (${(error as Error).message})`)
      }
    }
    out.set(upper, Object.freeze(compiled))
    // GET's rules hold for HEAD, which is the same request without the answer's body.
    if (upper === 'GET' && value.HEAD === undefined) out.set('HEAD', Object.freeze(compiled))
  }
  return out.size === 0 ? null : out
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

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

type JsonParser = (request: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => void

/** Reads a request body of at most `limit` bytes; `null` when it went over (the caller answers 413). */
function readBody (source: Readable, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let length = 0
    const cleanup = (): void => {
      source.removeListener('data', onData)
      source.removeListener('end', onEnd)
      source.removeListener('error', onError)
    }
    const onData = (chunk: Buffer): void => {
      length += chunk.length
      if (length > limit) {
        cleanup()
        source.pause()
        resolve(null)
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => { cleanup(); resolve(Buffer.concat(chunks, length)) }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    source.on('data', onData)
    source.once('end', onEnd)
    source.once('error', onError)
  })
}

function hasBody (request: FastifyRequest): boolean {
  const headers = request.headers
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
}

/**
 * The `preValidation` hook of a route with `validate`: it runs after the route's
 * `onRequest` hooks (auth, rate limit), checks every part the method has a schema for,
 * and refuses the request with 400 listing every problem, before anything is sent
 * upstream. A body it checked is kept as a Buffer and forwarded byte for byte.
 */
export function validationHook (validation: RouteValidation, bodyLimit: number, parseJson: JsonParser): preValidationHookHandler {
  return async function tollgateProxyValidate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const validators = validation.get(request.raw.method!)
    if (validators === undefined) return
    const problems: string[] = []
    const check = (part: RequestPart, validator: Validator | null, data: unknown): void => {
      if (validator === null || validator(data)) return
      problems.push(...describeErrors(part, validator.errors ?? []))
    }
    // Coercion rewrites the data it checks: check copies, so what is forwarded stays as sent.
    if (validators.params !== null) check('params', validators.params, { ...(request.params as object) })
    if (validators.querystring !== null) check('querystring', validators.querystring, { ...(request.query as object) })
    if (validators.headers !== null) check('headers', validators.headers, { ...request.headers })
    if (validators.body !== null) {
      let data: unknown
      let parsed = true
      if (hasBody(request)) {
        const type = request.headers['content-type']
        if (type === undefined || !JSON_TYPE.test(type)) {
          // The body cannot be checked, so it is not forwarded.
          if (!request.raw.complete) reply.header('connection', 'close')
          throw new UnsupportedMediaTypeError()
        }
        const source = (request.body instanceof Readable ? request.body : request.raw) as Readable
        const raw = await readBody(source, bodyLimit)
        if (raw === null) {
          reply.header('connection', 'close')
          throw new BodyTooLargeError()
        }
        request.body = raw
        try {
          data = await new Promise((resolve, reject) => {
            parseJson(request, raw.toString('utf8'), (err, value) => { if (err === null) resolve(value); else reject(err) })
          })
        } catch {
          parsed = false
          problems.push('body: is not valid JSON')
        }
      }
      if (parsed) check('body', validators.body, data)
    }
    if (problems.length > 0) {
      if (validators.body === null && hasBody(request) && !request.raw.complete) reply.header('connection', 'close')
      const error = new RequestValidationError(problems.join('; '))
      ;(error as Error & { problems?: string[] }).problems = problems
      throw error
    }
  }
}
