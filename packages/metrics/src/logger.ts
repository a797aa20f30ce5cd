import type { IncomingMessage } from 'node:http'
import type { PinoLoggerOptions } from 'fastify/types/logger.js'
import { requestIdFor } from '@tollgate/common'

/** What replaces a redacted value in a log line. */
export const CENSOR = '[Redacted]'

/** Headers whose values never reach a log line, whatever logs them. */
export const SENSITIVE_HEADERS: readonly string[] = Object.freeze([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key'
])

/** Query parameters whose values are replaced by `[Redacted]` in every URL logged (compared case-insensitively). */
export const SENSITIVE_QUERY_PARAMS: readonly string[] = Object.freeze([
  'access_token',
  'id_token',
  'refresh_token',
  'token',
  'api_key',
  'apikey',
  'api-key',
  'key',
  'client_secret',
  'secret',
  'password',
  'passwd',
  'code',
  'sig',
  'signature',
  'x-api-key',
  'auth',
  'authorization',
  'jwt',
  'session'
])

/** Options of {@link loggerOptions}. Any other pino option is passed through unchanged. */
export interface TollgateLoggerOptions extends Omit<PinoLoggerOptions, 'redact'> {
  /** The API key header, redacted like `authorization` (and its name as a query parameter). @default 'x-api-key' */
  apiKeyHeader?: string
  /** More query parameter names whose values are redacted in logged URLs. */
  redactQueryParams?: readonly string[]
  /** More pino redaction paths. */
  redactPaths?: readonly string[]
}

// Where a header object may be logged. Explicit paths only: pino applies a path's
// redaction only when its top-level key is in the logged object, so these cost nothing
// on the request line, whereas a `*.` wildcard would run on every line (measured 5-10x
// slower per line).
const HOLDERS = [
  'req.headers', 'request.headers', 'res.headers', 'reply.headers', 'response.headers',
  'headers', 'err.headers', 'error.headers', 'upstream.headers', 'options.headers'
]

const CREDENTIAL_FIELDS = [
  'authorization', 'cookie', 'token', 'accessToken', 'access_token', 'refreshToken', 'refresh_token',
  'idToken', 'id_token', 'apiKey', 'api_key', 'password', 'secret', 'clientSecret', 'client_secret'
]

/**
 * The pino redaction paths covering the sensitive headers (and `apiKeyHeader`) in every
 * header object logged under a usual key (`headers`, `req.headers`, `res.headers`,
 * `err.headers`...), and credential fields at the top of a log object (`token`,
 * `apiKey`, `password`...). Give them to pino's `redact` when you build your own logger
 * options; {@link loggerOptions} already does.
 */
export function redactPaths (apiKeyHeader = 'x-api-key'): string[] {
  const headers = new Set([...SENSITIVE_HEADERS, apiKeyHeader.toLowerCase()])
  const paths: string[] = []
  for (const holder of HOLDERS) {
    for (const header of headers) paths.push(`${holder}[${JSON.stringify(header)}]`)
  }
  paths.push(...CREDENTIAL_FIELDS)
  return paths
}

function buildQueryRedactor (names: Iterable<string>): (url: string) => string {
  const sensitive = new Set<string>()
  for (const name of names) sensitive.add(name.toLowerCase())
  // A query holding none of the names anywhere, in any case, and nothing encoded cannot
  // hold one as a parameter name: one regular expression instead of splitting the query
  // on every request line. Case folding (`u`) so that a name lower-casing to a sensitive
  // one (the Kelvin sign K to `k`) is still looked at.
  const mayHoldSensitive = new RegExp(`[%+]|${[...sensitive].map(escapeRegExp).join('|')}`, 'iu')
  return function redactQuery (url: string): string {
    const queryAt = url.indexOf('?')
    if (queryAt === -1) return url
    const query = url.slice(queryAt + 1)
    if (!mayHoldSensitive.test(query)) return url
    const parts = query.split('&')
    let changed = false
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string
      const eq = part.indexOf('=')
      let name = eq === -1 ? part : part.slice(0, eq)
      // Only an encoded name needs decoding (the usual `page=1` does not: every request log line runs this).
      if (name.includes('%') || name.includes('+')) {
        try {
          name = decodeURIComponent(name.replace(/\+/g, ' '))
        } catch {
          // An undecodable name is compared as sent.
        }
      }
      if (sensitive.has(name.trim().toLowerCase()) && eq !== -1) {
        parts[i] = `${part.slice(0, eq)}=${CENSOR}`
        changed = true
      }
    }
    return changed ? `${url.slice(0, queryAt)}?${parts.join('&')}` : url
  }
}

const defaultQueryRedactor = buildQueryRedactor(SENSITIVE_QUERY_PARAMS)

/**
 * The URL with the values of sensitive query parameters (`access_token`, `api_key`,
 * `token`, ...) replaced by `[Redacted]`. Cheap when there is no query string.
 */
export function redactUrl (url: string, extraParams?: readonly string[]): string {
  if (extraParams === undefined || extraParams.length === 0) return defaultQueryRedactor(url)
  return buildQueryRedactor([...SENSITIVE_QUERY_PARAMS, ...extraParams])(url)
}

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // Authorization schemes followed by their credential.
  [/\b(Bearer|Basic|Digest|Token|ApiKey)(\s+)[^\s"',;]+/gi, `$1$2${CENSOR}`],
  // JWT-shaped strings anywhere.
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, CENSOR]
]

/** Names that, followed by `:` or `=`, introduce a credential in free text. */
const FREE_TEXT_NAMES = [
  ...SENSITIVE_HEADERS, 'access_token', 'id_token', 'refresh_token', 'token', 'api_key', 'apikey', 'api-key',
  'client_secret', 'secret', 'password', 'passwd', 'jwt', 'key'
]

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function buildScrubber (queryParams: readonly string[], extraNames: readonly string[] = []): (text: string) => string {
  const query = new RegExp(`([?&;]\\s*(?:${queryParams.map(escapeRegExp).join('|')})=)[^&\\s#"']*`, 'gi')
  const named = new RegExp(`(\\b(?:${[...FREE_TEXT_NAMES, ...extraNames].map(escapeRegExp).join('|')})["']?\\s*[:=]\\s*["']?(?:(?:Bearer|Basic|Digest|Token|ApiKey)\\s+)?)[^\\s"',;&]+`, 'gi')
  // Strings already known to be clean (constant messages such as "request completed"),
  // so the common case costs one set lookup. Bounded.
  const clean = new Set<string>()
  return (text) => {
    if (clean.has(text)) return text
    let out = text
    for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement)
    out = out.replace(query, `$1${CENSOR}`).replace(named, `$1${CENSOR}`)
    if (out === text && text.length <= 200 && clean.size < 500) clean.add(text)
    return out
  }
}

/** Replaces anything that looks like a credential in free text (error messages, stacks) by `[Redacted]`. */
export const scrubSecrets = buildScrubber(SENSITIVE_QUERY_PARAMS)

const SAFE_ERROR_FIELDS = new Set(['code', 'statusCode', 'status', 'errno', 'syscall', 'name'])

interface SerializedError {
  type: string
  message: string
  stack?: string
  cause?: SerializedError
  [field: string]: unknown
}

function serializeError (value: unknown, scrub: (text: string) => string, depth: number): SerializedError | unknown {
  if (!(value instanceof Error)) {
    return typeof value === 'string' ? scrub(value) : value
  }
  const out: SerializedError = {
    type: value.constructor?.name ?? 'Error',
    message: scrub(String(value.message))
  }
  if (typeof value.stack === 'string') out.stack = scrub(value.stack)
  // Only plain, well-known fields: an error may carry request options, headers or bodies.
  for (const field of SAFE_ERROR_FIELDS) {
    const fieldValue = (value as unknown as Record<string, unknown>)[field]
    if (typeof fieldValue === 'string') out[field] = scrub(fieldValue)
    else if (typeof fieldValue === 'number' || typeof fieldValue === 'boolean') out[field] = fieldValue
  }
  if (value.cause !== undefined && depth < 5) out.cause = serializeError(value.cause, scrub, depth + 1) as SerializedError
  return out
}

interface RequestLike {
  method?: string
  url?: string
  ip?: string
  host?: string
  id?: unknown
  socket?: { remoteAddress?: string, remotePort?: number } | null
  headers?: Record<string, unknown>
}

/**
 * pino serializers that never dump a header object: `req` (method, redacted url, host,
 * remote address), `res` (status code) and `err` (type, scrubbed message and stack, code,
 * status code and cause, never other fields an error may carry).
 */
export function serializers (queryParams: readonly string[] = []): { req: (req: RequestLike) => object, res: (res: { statusCode?: number }) => object, err: (err: unknown) => unknown } {
  const redactQuery = queryParams.length === 0 ? defaultQueryRedactor : buildQueryRedactor([...SENSITIVE_QUERY_PARAMS, ...queryParams])
  const scrub = queryParams.length === 0 ? scrubSecrets : buildScrubber([...SENSITIVE_QUERY_PARAMS, ...queryParams], queryParams)
  return {
    req (req) {
      return {
        method: req.method,
        url: typeof req.url === 'string' ? redactQuery(req.url) : undefined,
        host: typeof req.host === 'string' ? req.host : req.headers?.host,
        remoteAddress: req.ip ?? req.socket?.remoteAddress,
        remotePort: req.socket?.remotePort
      }
    },
    res (res) {
      return { statusCode: res.statusCode }
    },
    err (err) {
      return serializeError(err, scrub, 0)
    }
  }
}

/**
 * pino options for `Fastify({ logger })`: level, redaction of `authorization`,
 * `proxy-authorization`, `cookie`, `set-cookie` and the API key header wherever a header
 * object appears, URL query tokens redacted by the `req` serializer, credentials scrubbed
 * from error messages and stacks and from any log message. Other pino options pass through.
 */
export function loggerOptions (options: TollgateLoggerOptions = {}): PinoLoggerOptions {
  const { apiKeyHeader = 'x-api-key', redactQueryParams = [], redactPaths: extraPaths = [], serializers: userSerializers, hooks, ...rest } = options
  const queryParams = [...redactQueryParams, apiKeyHeader.toLowerCase()]
  const ours = serializers(queryParams)
  const scrub = buildScrubber([...SENSITIVE_QUERY_PARAMS, ...queryParams], [apiKeyHeader.toLowerCase()])
  return {
    level: 'info',
    ...rest,
    redact: { paths: [...redactPaths(apiKeyHeader), ...extraPaths], censor: CENSOR },
    serializers: { ...userSerializers, ...ours },
    hooks: {
      ...hooks,
      // The message string is free text (Fastify logs `error.message` there): scrub it too.
      logMethod (args, method, level) {
        for (let i = 0; i < args.length; i++) {
          const arg = args[i]
          if (typeof arg === 'string' && arg.length > 0) (args as unknown[])[i] = scrub(arg)
        }
        if (hooks?.logMethod !== undefined) {
          hooks.logMethod.call(this, args, method, level)
        } else {
          method.apply(this, args)
        }
      }
    }
  }
}

/**
 * Makes a `genReqId` for `Fastify({ genReqId, requestIdHeader: false })`: the client's
 * `header` value when it is a sane id (1 to 128 of `A-Z a-z 0-9 . _ : -`), else a UUID.
 */
export function createGenReqId (header = 'x-request-id'): (req: IncomingMessage) => string {
  const name = header.toLowerCase()
  return (req) => requestIdFor(req.headers[name])
}

/** `genReqId` keeping a sane client `x-request-id`, else making a UUID. */
export const genReqId: (req: IncomingMessage) => string = createGenReqId('x-request-id')
