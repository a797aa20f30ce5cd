import build from 'fast-json-stringify'
import { parseSize, type Size } from '@tollgate/common'
import { InvalidOptionError } from './errors.js'

/** Per status (`200`, `201`, ...) or `2xx`: the JSON Schema of the answer the client may see. */
export type ResponseSchemas = Record<string, Record<string, unknown>>

type Serialize = (value: unknown) => string

/** A route's response shaping, compiled once at registration. */
export interface ResponseShaping {
  readonly byStatus: ReadonlyMap<number, Serialize>
  readonly any2xx: Serialize | null
  /** Largest upstream body buffered for shaping (inclusive); larger ones pass through untouched. */
  readonly limit: number
}

/** Default `responseBufferLimit`: 1 MiB. */
export const DEFAULT_RESPONSE_BUFFER_LIMIT = 1_048_576

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Compiles `response` with fast-json-stringify (the serializer Fastify uses for its own
 * response schemas): it writes exactly the properties the schema lists, so any other
 * field of the upstream's answer is dropped.
 */
export function resolveShaping (value: unknown, limitValue: unknown, path: string): ResponseShaping | null {
  if (value === undefined || value === null) {
    if (limitValue !== undefined) throw new InvalidOptionError(`${path.replace(/response$/, 'responseBufferLimit')}: only has a meaning with response`)
    return null
  }
  if (!isObject(value) || Object.keys(value).length === 0) throw new InvalidOptionError(`${path}: must be an object of statuses, e.g. { 200: {...} } or { 2xx: {...} }`)
  const byStatus = new Map<number, Serialize>()
  let any2xx: Serialize | null = null
  for (const [status, schema] of Object.entries(value)) {
    const at = `${path}.${status}`
    if (!/^2(?:\d\d|xx)$/.test(status)) throw new InvalidOptionError(`${at}: must be a 2xx status (200-299) or "2xx": only successful answers are shaped`)
    if (!isObject(schema)) throw new InvalidOptionError(`${at}: must be a JSON Schema object`)
    let serialize: Serialize
    try {
      serialize = build(schema as never) as Serialize
    } catch (error) {
      throw new InvalidOptionError(`${at}: invalid response schema (${(error as Error).message})`)
    }
    if (status === '2xx') any2xx = serialize
    else byStatus.set(Number(status), serialize)
  }
  let limit = DEFAULT_RESPONSE_BUFFER_LIMIT
  if (limitValue !== undefined) {
    const limitPath = path.replace(/response$/, 'responseBufferLimit')
    try {
      limit = parseSize(limitValue as Size, limitPath)
    } catch {
      throw new InvalidOptionError(`${limitPath}: invalid size ${JSON.stringify(limitValue)} (use a number of bytes or a string like "512kb", "1mb")`)
    }
  }
  return Object.freeze({ byStatus, any2xx, limit })
}

/** The serializer for a status, or `null` when answers with that status are not shaped. */
export function serializerFor (shaping: ResponseShaping, status: number): Serialize | null {
  return shaping.byStatus.get(status) ?? (status >= 200 && status < 300 ? shaping.any2xx : null)
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

/**
 * Whether an upstream answer can be shaped, from its raw header block: a JSON
 * `content-type`, no `content-encoding` (a compressed body is passed through untouched)
 * and no `content-length` above the limit.
 */
export function shapeable (raw: readonly Buffer[], limit: number): boolean {
  let json = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase()
    if (name === 'content-type') json = JSON_TYPE.test(raw[i + 1]!.toString('latin1'))
    else if (name === 'content-encoding') {
      const encoding = raw[i + 1]!.toString('latin1').trim().toLowerCase()
      if (encoding !== '' && encoding !== 'identity') return false
    } else if (name === 'content-length' && Number(raw[i + 1]!.toString('latin1')) > limit) return false
  }
  return json
}
