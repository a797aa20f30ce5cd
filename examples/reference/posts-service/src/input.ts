import type { FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import { httpError } from './identity.js'

/** The longest post id a path takes (ids are UUIDs). */
export const ID_MAX_LENGTH = 64

/**
 * Bodies are validated as sent: no type coercion (`{"title": 5}` is not the title "5",
 * nor `["x"]` the title "x"), and unknown properties are refused with a 400 rather than
 * silently dropped. Fastify's other defaults stay (schema defaults applied, first error only).
 */
export const STRICT_BODIES = { customOptions: { coerceTypes: false, removeAdditional: false } } satisfies FastifyServerOptions['ajv']

const INTEGER = /^-?\d{1,15}$/

/**
 * A `preValidation` hook. A query string is text (`?limit=10` arrives as "10") and validation
 * no longer coerces types, so the integer parameters the route's querystring schema declares
 * are read as numbers here, just before validation. Anything but plain digits (`10abc`, a
 * repeated parameter) is left as sent, for the schema to refuse.
 */
export async function integerQuery (request: FastifyRequest): Promise<void> {
  const properties = (request.routeOptions.schema?.querystring as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties
  if (properties === undefined) return
  const query = request.query as Record<string, unknown>
  for (const [name, schema] of Object.entries(properties)) {
    const value = query[name]
    if (schema.type === 'integer' && typeof value === 'string' && INTEGER.test(value)) query[name] = Number(value)
  }
}

/**
 * Fastify's `frameworkErrors`: the router's refusals, before any route or schema. An id longer
 * than the router takes gets the schema's own 400 (Fastify would answer 414 "Bad Request" and
 * quote the URL back); a URL whose percent-encoding does not decode gets a 400 that does not
 * quote it either (its query could hold anything).
 */
export function onRouterError (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply.code(400).send({ statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: `params/id must NOT have more than ${ID_MAX_LENGTH} characters` })
  } else if (error.code === 'FST_ERR_BAD_URL') {
    void reply.code(400).send({ statusCode: 400, code: error.code, error: 'Bad Request', message: 'malformed URL: a percent-encoding does not decode' })
  } else {
    void reply.code(500).send({ statusCode: 500, error: 'Internal Server Error', message: 'the request could not be routed' })
  }
}

const CONTROL = /\p{Cc}/u

/**
 * A title as stored: trimmed, as the resumes service stores its titles. Blank text, and text
 * with control characters (NUL, line breaks, terminal escapes), gets a 400 naming the field.
 */
export function text (field: string, value: string): string {
  if (CONTROL.test(value)) throw httpError(400, `body/${field} must not contain control characters`)
  const trimmed = value.trim()
  if (trimmed === '') throw httpError(400, `body/${field} must not be blank`)
  return trimmed
}
