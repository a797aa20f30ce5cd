import type { FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify'
import { compileRequestSchemas, requestProblems, type RequestSchemas, type RequestValidators } from '@tollgate/common'
import { bodySource, readBody } from './body.js'
import { BodyTooLargeError, InvalidOptionError, RequestValidationError, UnsupportedMediaTypeError } from './errors.js'

/** Per method (`GET`, `POST`, ...): the JSON Schemas a request must satisfy before it is proxied. */
export type ValidateOptions = Record<string, RequestSchemas>
export type { RequestSchemas }

/** Compiled validators of a route, per upper-case method. */
export type RouteValidation = ReadonlyMap<string, RequestValidators>

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Compiles a route's `validate` option once, at registration. A schema Ajv refuses fails
 * the registration with the schema's option path.
 */
export function resolveValidation (value: unknown, path: string, methods: ReadonlySet<string> | null, known: readonly string[]): RouteValidation | null {
  if (value === undefined || value === null) return null
  if (!isObject(value)) throw new InvalidOptionError(`${path}: must be an object of methods, e.g. { POST: { body: {...} } }`)
  const out = new Map<string, RequestValidators>()
  for (const [method, schemas] of Object.entries(value)) {
    const at = `${path}.${method}`
    const upper = method.toUpperCase()
    if (upper !== method || !known.includes(upper)) throw new InvalidOptionError(`${at}: must be an upper-case method (${known.join(', ')})`)
    if (methods !== null && !methods.has(upper)) throw new InvalidOptionError(`${at}: the route does not allow ${upper}`)
    const compiled = compileRequestSchemas(schemas, upper, at, InvalidOptionError)
    out.set(upper, compiled)
    // GET's rules hold for HEAD, which is the same request without the answer's body.
    if (upper === 'GET' && value.HEAD === undefined) out.set('HEAD', compiled)
  }
  return out.size === 0 ? null : out
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

type JsonParser = (request: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => void

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
    let body: unknown
    let bodyProblem: string | null = null
    if (validators.body !== null && hasBody(request)) {
      const type = request.headers['content-type']
      if (type === undefined || !JSON_TYPE.test(type)) {
        // The body cannot be checked, so it is not forwarded.
        if (!request.raw.complete) reply.header('connection', 'close')
        throw new UnsupportedMediaTypeError()
      }
      const raw = await readBody(bodySource(request), bodyLimit)
      if (raw === null) {
        reply.header('connection', 'close')
        throw new BodyTooLargeError()
      }
      // Already read: forwarded byte for byte from here.
      request.body = raw
      try {
        body = await new Promise((resolve, reject) => {
          parseJson(request, raw.toString('utf8'), (err, value) => { if (err === null) resolve(value); else reject(err) })
        })
      } catch {
        bodyProblem = 'body: is not valid JSON'
      }
    }
    const problems = requestProblems(bodyProblem === null ? validators : { ...validators, body: null }, request, body)
    if (bodyProblem !== null) problems.push(bodyProblem)
    if (problems.length > 0) {
      if (validators.body === null && hasBody(request) && !request.raw.complete) reply.header('connection', 'close')
      const error = new RequestValidationError(problems.join('; '))
      ;(error as Error & { problems?: string[] }).problems = problems
      throw error
    }
  }
}
