import type { FastifyReply, FastifyRequest } from 'fastify'
import { HOP_BY_HOP_HEADERS, headerAlias } from '@tollgate/common'
import { InvalidOptionError } from './errors.js'

/**
 * Header transformation of one direction. Applied in this order: `remove`, `rename`,
 * `set` (replaces any value), `add` (appends a value). Values may use `${request.id}`,
 * `${identity.id}`, `${identity.roles}`, `${identity.permissions}` and `${identity.method}`.
 */
export interface HeaderRulesOptions {
  set?: Record<string, string>
  add?: Record<string, string>
  remove?: string[]
  rename?: Record<string, string>
}

type Part = string | ((request: FastifyRequest) => string | null)

/** A value template, compiled: literal text and variable readers. */
type Template = readonly Part[]

export interface HeaderRules {
  readonly remove: readonly string[]
  readonly rename: ReadonlyArray<readonly [string, string]>
  readonly set: ReadonlyArray<readonly [string, Template]>
  readonly add: ReadonlyArray<readonly [string, Template]>
}

/** Headers no rule may touch, whatever the direction: the gateway sets or strips them itself. */
export const PROTECTED_HEADERS: readonly string[] = [
  ...HOP_BY_HOP_HEADERS,
  'host',
  'content-length',
  'expect',
  'x-request-id',
  'traceparent',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host'
]

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/
const RULE_KEYS = new Set(['set', 'add', 'remove', 'rename'])

const VARIABLES: Record<string, (request: FastifyRequest) => string | null> = {
  'request.id': (request) => request.id,
  'identity.id': (request) => request.tollgateIdentity?.id ?? null,
  'identity.method': (request) => request.tollgateIdentity?.method ?? null,
  'identity.roles': (request) => request.tollgateIdentity?.roles.join(',') ?? null,
  'identity.permissions': (request) => request.tollgateIdentity?.permissions.join(',') ?? null
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function compileTemplate (value: unknown, path: string): Template {
  if (typeof value !== 'string') throw new InvalidOptionError(`${path}: must be a string`)
  if (/[\r\n\0]/.test(value)) throw new InvalidOptionError(`${path}: must not contain CR, LF or NUL`)
  const parts: Part[] = []
  let last = 0
  for (const match of value.matchAll(/\$\{([^}]*)\}/g)) {
    const reader = VARIABLES[match[1]!]
    if (reader === undefined) {
      throw new InvalidOptionError(`${path}: unknown variable ${match[0]} (use ${Object.keys(VARIABLES).map((name) => `\${${name}}`).join(', ')})`)
    }
    if (match.index > last) parts.push(value.slice(last, match.index))
    parts.push(reader)
    last = match.index + match[0].length
  }
  if (last < value.length) parts.push(value.slice(last))
  return Object.freeze(parts)
}

/**
 * A template's value for this request; `null` when a variable has no value (an
 * identity variable on an anonymous request): the header is then left alone.
 */
function render (template: Template, request: FastifyRequest): string | null {
  if (template.length === 1 && typeof template[0] === 'string') return template[0]
  let out = ''
  for (const part of template) {
    if (typeof part === 'string') out += part
    else {
      const value = part(request)
      if (value === null) return null
      out += value
    }
  }
  return out
}

/**
 * Compiles `requestHeaders` / `responseHeaders` once. A rule naming a protected header
 * (hop-by-hop, framing, forwarding, request id, trace context, or one of `protectedNames`,
 * compared as aliases: `x_user_id` is `x-user-id`) fails the registration.
 */
export function resolveHeaderRules (value: unknown, path: string, protectedNames: readonly string[]): HeaderRules | null {
  if (value === undefined || value === null) return null
  if (!isObject(value)) throw new InvalidOptionError(`${path}: must be an object with set, add, remove or rename`)
  for (const key of Object.keys(value)) if (!RULE_KEYS.has(key)) throw new InvalidOptionError(`${path}.${key}: unknown key`)
  const guarded = new Set([...PROTECTED_HEADERS, ...protectedNames].map(headerAlias))
  const name = (raw: unknown, at: string): string => {
    if (typeof raw !== 'string' || !TOKEN.test(raw)) throw new InvalidOptionError(`${at}: must be a header name`)
    if (guarded.has(headerAlias(raw))) throw new InvalidOptionError(`${at}: ${raw.toLowerCase()} is protected: header rules cannot set, add, remove or rename it`)
    return raw.toLowerCase()
  }
  const pairs = (key: 'set' | 'add' | 'rename'): Array<[string, unknown]> => {
    const entries = value[key]
    if (entries === undefined) return []
    if (!isObject(entries)) throw new InvalidOptionError(`${path}.${key}: must be an object of header names`)
    return Object.entries(entries)
  }
  const remove = value.remove
  if (remove !== undefined && !Array.isArray(remove)) throw new InvalidOptionError(`${path}.remove: must be a list of header names`)
  const rules: HeaderRules = Object.freeze({
    remove: Object.freeze((remove ?? []).map((raw: unknown, i: number) => name(raw, `${path}.remove[${i}]`))),
    rename: Object.freeze(pairs('rename').map(([from, to]) => Object.freeze([name(from, `${path}.rename.${from}`), name(to, `${path}.rename.${from}`)] as const))),
    set: Object.freeze(pairs('set').map(([header, template]) => Object.freeze([name(header, `${path}.set.${header}`), compileTemplate(template, `${path}.set.${header}`)] as const))),
    add: Object.freeze(pairs('add').map(([header, template]) => Object.freeze([name(header, `${path}.add.${header}`), compileTemplate(template, `${path}.add.${header}`)] as const)))
  })
  return rules.remove.length + rules.rename.length + rules.set.length + rules.add.length === 0 ? null : rules
}

/** Applies request rules to the headers about to be sent upstream (after the client's were copied). */
export function applyRequestRules (headers: Record<string, string | string[]>, rules: HeaderRules, request: FastifyRequest): void {
  for (const header of rules.remove) delete headers[header]
  for (const [from, to] of rules.rename) {
    const value = headers[from]
    if (value === undefined) continue
    delete headers[from]
    headers[to] = value
  }
  for (const [header, template] of rules.set) {
    const value = render(template, request)
    if (value !== null) headers[header] = value
  }
  for (const [header, template] of rules.add) {
    const value = render(template, request)
    if (value === null) continue
    const existing = headers[header]
    headers[header] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value]
  }
}

/** Applies response rules to the reply's headers (the upstream's, after hop-by-hop ones were dropped). */
export function applyResponseRules (reply: FastifyReply, rules: HeaderRules, request: FastifyRequest): void {
  for (const header of rules.remove) reply.removeHeader(header)
  for (const [from, to] of rules.rename) {
    const value = reply.getHeader(from)
    if (value === undefined) continue
    reply.removeHeader(from)
    reply.header(to, value)
  }
  for (const [header, template] of rules.set) {
    const value = render(template, request)
    if (value !== null) reply.header(header, value)
  }
  for (const [header, template] of rules.add) {
    const value = render(template, request)
    if (value === null) continue
    const existing = reply.getHeader(header)
    reply.header(header, existing === undefined ? value : [...(Array.isArray(existing) ? existing : [String(existing)]), value])
  }
}
