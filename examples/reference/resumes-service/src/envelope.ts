import { RpcException } from '@nestjs/microservices'
import type { ResumeChanges, ResumeInput } from './store.js'

/**
 * A request as the gateway sends it with `data: envelope`, reduced to what the service
 * reads. `caller` is the verified identity's id (the JWT's `sub`): the gateway alone
 * authenticates, and nothing in `body` may say who the caller is.
 */
export interface Envelope {
  caller: string
  params: Readonly<Record<string, unknown>>
  query: Readonly<Record<string, unknown>>
  body: unknown
  requestId: string
}

export const LIMITS = { title: 200, summary: 5000, skills: 50, skill: 50, page: 100 } as const

/**
 * The error a client sees: the gateway answers an `RpcException` carrying a 4xx
 * `statusCode` with that status and `message` (a list joined with `; `); any other
 * error becomes a generic 502.
 */
export function rejected (statusCode: number, message: string | string[]): RpcException {
  return new RpcException({ statusCode, message })
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const SANE_ID = /^[\x21-\x7e]{1,200}$/

/** The gateway's envelope; 400 when the data is something else, 401 without a verified identity. */
export function envelopeOf (data: unknown): Envelope {
  if (!isObject(data) || !('identity' in data)) throw rejected(400, 'expected the gateway\'s envelope: map this pattern with data: envelope')
  const identity = data.identity
  const caller = isObject(identity) ? identity.id : undefined
  if (typeof caller !== 'string' || !SANE_ID.test(caller)) throw rejected(401, 'no verified identity: the gateway must authenticate this route')
  return {
    caller,
    params: isObject(data.params) ? data.params : {},
    query: isObject(data.query) ? data.query : {},
    body: data.body,
    requestId: typeof data.requestId === 'string' ? data.requestId.slice(0, 128) : ''
  }
}

/** `params.id`, or `''` (which matches no resume) when absent. */
export function idOf (envelope: Envelope): string {
  return typeof envelope.params.id === 'string' ? envelope.params.id : ''
}

function count (value: unknown, name: string, min: number, max: number, fallback: number, problems: string[]): number {
  if (value === undefined) return fallback
  const number = typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : NaN
  if (number >= min && number <= max) return number
  problems.push(`${name} must be an integer from ${min} to ${max}`)
  return fallback
}

/** `?limit=&offset=` (strings, as every query value): limit 1 to 100 (default 20), offset from 0. */
export function pageOf (envelope: Envelope): { limit: number, offset: number } {
  const problems: string[] = []
  const limit = count(envelope.query.limit, 'limit', 1, LIMITS.page, 20, problems)
  const offset = count(envelope.query.offset, 'offset', 0, 1_000_000, 0, problems)
  if (problems.length > 0) throw rejected(400, problems)
  return { limit, offset }
}

function title (value: unknown, problems: string[]): string | undefined {
  const trimmed = typeof value === 'string' ? value.trim() : ''
  if (trimmed.length >= 1 && trimmed.length <= LIMITS.title) return trimmed
  problems.push(`title must be a string of 1 to ${LIMITS.title} characters`)
  return undefined
}

function summary (value: unknown, problems: string[]): string | undefined {
  if (typeof value === 'string' && value.length <= LIMITS.summary) return value
  problems.push(`summary must be a string of at most ${LIMITS.summary} characters`)
  return undefined
}

function skills (value: unknown, problems: string[]): string[] | undefined {
  const valid = Array.isArray(value) && value.length <= LIMITS.skills &&
    value.every((skill) => typeof skill === 'string' && skill.trim().length >= 1 && skill.trim().length <= LIMITS.skill)
  if (valid) return (value as string[]).map((skill) => skill.trim())
  problems.push(`skills must be a list of at most ${LIMITS.skills} strings of 1 to ${LIMITS.skill} characters`)
  return undefined
}

const SHAPE = '{ title, summary?, skills? }'

/**
 * A new resume from the body. Only `title`, `summary` and `skills` are read: anything
 * else (`ownerId`, `id`, `version`...) is ignored, as NestJS's ValidationPipe does with
 * `whitelist: true`. Every problem is reported at once (400).
 */
export function createInput (body: unknown): ResumeInput {
  if (!isObject(body)) throw rejected(400, `the body must be a JSON object ${SHAPE}`)
  const problems: string[] = []
  const input = {
    title: title(body.title, problems),
    summary: body.summary === undefined ? '' : summary(body.summary, problems),
    skills: body.skills === undefined ? [] : skills(body.skills, problems)
  }
  if (problems.length > 0) throw rejected(400, problems)
  return input as ResumeInput
}

/** Changes from an update's body (at least one field), and the `version` the client read, if it says. */
export function changesOf (body: unknown): { changes: ResumeChanges, version: number | undefined } {
  if (!isObject(body)) throw rejected(400, `the body must be a JSON object with some of ${SHAPE} (and version?)`)
  const problems: string[] = []
  const changes: ResumeChanges = {}
  if (body.title !== undefined) changes.title = title(body.title, problems)
  if (body.summary !== undefined) changes.summary = summary(body.summary, problems)
  if (body.skills !== undefined) changes.skills = skills(body.skills, problems)
  const version = body.version
  if (version !== undefined && !(Number.isSafeInteger(version) && (version as number) >= 1)) problems.push('version must be a positive integer')
  if (problems.length === 0 && Object.keys(changes).length === 0) problems.push('nothing to change: send title, summary or skills')
  if (problems.length > 0) throw rejected(400, problems)
  return { changes, version: version as number | undefined }
}
