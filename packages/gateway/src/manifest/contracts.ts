import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { resolveOptions as resolveProxyOptions } from '@tollgate/proxy'
import type { Manifest, RouteSection, SchemaSource } from './types.js'

/** The route keys of issue 11 (edge contracts), as the proxy plugin takes them. */
export const CONTRACT_KEYS = ['path', 'rewrite', 'validate', 'response', 'responseBufferLimit', 'requestHeaders', 'responseHeaders'] as const

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * A schema given inline, or `{ $file: ./schemas/x.json }` read (relative to the
 * manifest) and parsed as JSON. Problems are pushed as `path: message`.
 */
export function loadSchema (source: SchemaSource, baseDir: string, path: string, problems: string[]): Record<string, unknown> | undefined {
  if (!isObject(source) || !('$file' in source)) return source as Record<string, unknown>
  const file = source.$file
  if (typeof file !== 'string' || Object.keys(source).length !== 1) {
    problems.push(`${path}: { $file } must be the only key and name a file`)
    return undefined
  }
  let text: string
  try {
    text = readFileSync(isAbsolute(file) ? file : resolve(baseDir, file), 'utf8')
  } catch (error) {
    problems.push(`${path}.$file: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`)
    return undefined
  }
  try {
    const schema = JSON.parse(text) as unknown
    if (!isObject(schema)) throw new Error('not an object')
    return schema
  } catch (error) {
    problems.push(`${path}.$file: ${file} is not a JSON Schema object (${(error as Error).message})`)
    return undefined
  }
}

/**
 * The proxy route options of a manifest route's contract keys, with `$file` schemas
 * read. Returns the problems found reading them (the proxy checks the rest).
 */
export function contractOptions (route: RouteSection, at: string, baseDir: string, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (route.path !== undefined) out.path = route.path
  if (route.rewrite !== undefined) out.rewrite = route.rewrite
  if (route.validate !== undefined) {
    out.validate = Object.fromEntries(Object.entries(route.validate).map(([method, parts]) => [
      method,
      Object.fromEntries(Object.entries(parts).map(([part, schema]) => [part, loadSchema(schema, baseDir, `${at}.validate.${method}.${part}`, problems)]))
    ]))
  }
  if (route.response !== undefined) {
    out.response = Object.fromEntries(Object.entries(route.response).map(([status, schema]) => [status, loadSchema(schema, baseDir, `${at}.response.${status}`, problems)]))
  }
  if (route.responseBufferLimit !== undefined) out.responseBufferLimit = route.responseBufferLimit
  if (route.requestHeaders !== undefined) out.requestHeaders = route.requestHeaders
  if (route.responseHeaders !== undefined) out.responseHeaders = route.responseHeaders
  return out
}

/** Header names no route's header rules may touch: the identity headers @tollgate/auth sets. */
export function protectedHeaderNames (manifest: Manifest): string[] {
  return Object.keys(manifest.auth?.identityHeaders ?? {})
}

/**
 * Every contract problem of the manifest's routes, as `path: message`: unreadable schema
 * files, schemas Ajv or fast-json-stringify refuse, bad templates, header rules that name
 * a protected header. The proxy's own option checks are run on each route (the manifest's
 * route index is the proxy's), so `tollgate validate` reports what startup would.
 */
export function contractProblems (manifest: Manifest, baseDir: string): string[] {
  const problems: string[] = []
  const protectedHeaders = protectedHeaderNames(manifest)
  manifest.routes.forEach((route, i) => {
    // A route with patterns has its validate and response checked by microserviceProblems.
    if (route.patterns !== undefined || !CONTRACT_KEYS.some((key) => route[key] !== undefined)) return
    const at = `routes[${i}]`
    const found: string[] = []
    const options = contractOptions(route, at, baseDir, found)
    problems.push(...found)
    if (found.length > 0) return
    try {
      resolveProxyOptions({
        upstreams: { [route.upstream]: { targets: ['http://127.0.0.1:1'] } },
        protectedHeaders,
        routes: [{ prefix: route.prefix, upstream: route.upstream, rewritePrefix: route.rewritePrefix ?? '', ...(route.methods === undefined ? {} : { methods: route.methods }), websocket: route.websocket === true, ...options }]
      })
    } catch (error) {
      problems.push(String((error as Error).message).replace(/^routes\[0\]/, at))
    }
  })
  return problems
}
