import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { isAbsolute, resolve } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { manifestSchema } from './schema.js'
import type { Manifest } from './types.js'
import { microserviceProblems, transportOf } from '../microservices.js'
import { contractProblems } from './contracts.js'
import { parseDuration } from '@tollgate/common'
import { SERVER_DEFAULTS } from './defaults.js'

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false })
const validateShape = ajv.compile(manifestSchema)

/** `["routes", 1, "foo"]` as `routes[1].foo`, the form every problem is reported in. */
export function formatPath (segments: ReadonlyArray<string | number>): string {
  let out = ''
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`
    else out += out === '' ? segment : `.${segment}`
  }
  return out === '' ? '(manifest)' : out
}

function pointerSegments (pointer: string): Array<string | number> {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map((raw) => {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    return /^\d+$/.test(segment) ? Number(segment) : segment
  })
}

function typeOf (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (Number.isInteger(value)) return 'integer'
  return typeof value
}

function branchAccepts (branch: Record<string, unknown>, value: unknown): boolean {
  if ('const' in branch) return typeOf(branch.const) === typeOf(value)
  const type = branch.type
  if (type === undefined) return true
  if (type === 'number') return typeof value === 'number'
  return type === typeOf(value)
}

function describe (error: ErrorObject): string {
  const parent = error.parentSchema as { description?: string } | undefined
  switch (error.keyword) {
    case 'required':
      return 'is required'
    case 'enum':
      return `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
    case 'const':
      return `must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`
    case 'type':
      return `must be ${/^[aeiou]/.test(String(error.params.type)) ? 'an' : 'a'} ${String(error.params.type)}`
    case 'pattern':
      return parent?.description ?? `must match ${String(error.params.pattern)}`
    case 'anyOf':
      return parent?.description ?? 'has a value of the wrong kind'
    default:
      return error.message ?? 'is invalid'
  }
}

/**
 * Schema problems as `path: message`. `anyOf` noise is folded: when the value's
 * kind picks exactly one branch, that branch's own problems are reported (so an
 * unknown key inside `auth: {...}` is named); otherwise one line for the value.
 */
function shapeProblems (errors: readonly ErrorObject[]): string[] {
  const anyOfFailures = errors.filter((e) => e.keyword === 'anyOf')
  const dropped = new Set<ErrorObject>()
  for (const failure of anyOfFailures) {
    const base = `${failure.schemaPath}/`
    const branches = failure.schema as Array<Record<string, unknown>>
    const accepting = branches.map((branch, i) => ({ i, ok: branchAccepts(branch, failure.data) })).filter((b) => b.ok)
    // A kind-matched object or array branch explains itself (e.g. an unknown key inside
    // it); for scalars the anyOf's own description says more than each branch's rule.
    const only = accepting.length === 1 ? branches[accepting[0]!.i]! : undefined
    const structured = only !== undefined && (only.type === 'object' || only.type === 'array')
    const keep = structured ? `${base}${accepting[0]!.i}/` : null
    for (const error of errors) {
      if (error !== failure && error.schemaPath.startsWith(base) && (keep === null || !error.schemaPath.startsWith(keep))) {
        dropped.add(error)
      }
    }
    if (keep !== null) dropped.add(failure)
  }
  const problems: string[] = []
  for (const error of errors) {
    if (dropped.has(error)) continue
    const segments = pointerSegments(error.instancePath)
    if (error.keyword === 'additionalProperties') {
      problems.push(`${formatPath([...segments, String(error.params.additionalProperty)])}: unknown key`)
    } else if (error.keyword === 'required') {
      problems.push(`${formatPath([...segments, String(error.params.missingProperty)])}: is required`)
    } else if (error.keyword === 'propertyNames') {
      continue // reported through the pattern error on the name itself
    } else if (error.keyword === 'pattern' && error.propertyName !== undefined) {
      problems.push(`${formatPath([...segments, error.propertyName])}: invalid name`)
    } else {
      problems.push(`${formatPath(segments)}: ${describe(error)}`)
    }
  }
  return [...new Set(problems)]
}

function checkTargetUrl (raw: string, path: string, problems: string[]): void {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    problems.push(`${path}: ${JSON.stringify(raw)} is not a URL (expected http://host:port)`)
    return
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`${path}: ${JSON.stringify(raw)} must use http or https`)
  } else if (url.username !== '' || url.password !== '') {
    problems.push(`${path}: ${JSON.stringify(raw)} must not carry credentials`)
  } else if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    problems.push(`${path}: ${JSON.stringify(raw)} must be an origin only (no path, query or fragment: use the route's rewritePrefix)`)
  }
}

function readable (file: string, baseDir: string, path: string, problems: string[]): Buffer | undefined {
  try {
    return readFileSync(isAbsolute(file) ? file : resolve(baseDir, file))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable'
    problems.push(`${path}: cannot read ${file} (${code})`)
    return undefined
  }
}

/**
 * The TLS certificate and key read as the listener will: OpenSSL's own message ("PEM
 * routines::no start line") names neither the file nor the manifest key, so each is
 * checked on its own, then as a pair.
 */
function tlsProblems (cert: Buffer, key: Buffer, problems: string[]): void {
  let certificateOk = true
  try {
    new X509Certificate(cert) // parsing is the check
  } catch {
    certificateOk = false
    problems.push('server.tls.cert: not a PEM certificate')
  }
  let keyOk = true
  try {
    createPrivateKey(key)
  } catch (error) {
    keyOk = false
    const encrypted = /ENCRYPTED|bad decrypt|passphrase/i.test(`${key.toString('latin1', 0, 200)} ${(error as Error).message}`)
    problems.push(encrypted
      ? 'server.tls.key: the private key is encrypted; give the gateway an unencrypted key (file permissions protect it)'
      : 'server.tls.key: not a PEM private key')
  }
  if (!certificateOk || !keyOk) return
  try {
    createSecureContext({ cert, key })
  } catch {
    problems.push('server.tls.key: does not match server.tls.cert')
  }
}

/** A PEM given inline rather than as a file path. */
export function isInlinePem (value: string): boolean {
  return value.trimStart().startsWith('-----BEGIN')
}

function overlaps (path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`) || prefix.startsWith(`${path}/`)
}

/** The longest delay Node.js can set a timer for: a longer one fires after 1 ms. */
const LONGEST_TIMER_MS = 2 ** 31 - 1

/** Durations that become timers: past LONGEST_TIMER_MS, a 30-day shutdown grace would cut requests at once. */
function timerProblems (manifest: Manifest): string[] {
  const problems: string[] = []
  const check = (value: unknown, at: string): void => {
    if (value === undefined) return
    let ms: number
    try {
      ms = parseDuration(value, at)
    } catch {
      return // the schema reports the form
    }
    if (ms > LONGEST_TIMER_MS) problems.push(`${at}: must be at most 24 days (${LONGEST_TIMER_MS} ms), the longest timer Node.js can set`)
  }
  const server = manifest.server ?? {}
  for (const key of ['shutdownGrace', 'requestTimeout', 'headersTimeout', 'keepAliveTimeout'] as const) check(server[key], `server.${key}`)
  for (const [name, upstream] of Object.entries(manifest.upstreams)) {
    for (const key of ['timeout', 'connectTimeout', 'bodyTimeout', 'keepAliveTimeout'] as const) check(upstream[key], `upstreams.${name}.${key}`)
    check(upstream.healthCheck?.interval, `upstreams.${name}.healthCheck.interval`)
    check(upstream.healthCheck?.timeout, `upstreams.${name}.healthCheck.timeout`)
    check(upstream.circuitBreaker?.resetAfter, `upstreams.${name}.circuitBreaker.resetAfter`)
  }
  return problems
}

/** Cross-field rules the schema cannot say: references, key sources, files, collisions. */
function meaningProblems (manifest: Manifest, baseDir: string): string[] {
  const problems: string[] = timerProblems(manifest)
  const upstreamNames = Object.keys(manifest.upstreams)

  for (const [name, upstream] of Object.entries(manifest.upstreams)) {
    if (transportOf(upstream) !== 'http') continue // tcp://, redis://, nats:// targets: microserviceProblems
    upstream.targets.forEach((target, i) => {
      checkTargetUrl(typeof target === 'string' ? target : target.url, `upstreams.${name}.targets[${i}]`, problems)
    })
    if (upstream.ca !== undefined) {
      readable(upstream.ca, baseDir, `upstreams.${name}.ca`, problems)
      if (!upstream.targets.some((target) => (typeof target === 'string' ? target : target.url).startsWith('https:'))) {
        problems.push(`upstreams.${name}.ca: only https targets use a CA, and this upstream has none`)
      }
    }
  }
  problems.push(...microserviceProblems(manifest, baseDir))

  const auth = manifest.auth
  const configured = new Set<string>()
  if (auth?.jwt !== undefined) {
    configured.add('jwt')
    const sources = (['jwksUrl', 'secret', 'publicKey'] as const).filter((key) => auth.jwt?.[key] !== undefined)
    if (sources.length !== 1) problems.push(`auth.jwt: set exactly one of jwksUrl, secret or publicKey (found ${sources.length === 0 ? 'none' : sources.join(', ')})`)
    const publicKey = auth.jwt.publicKey
    if (publicKey !== undefined && !isInlinePem(publicKey)) readable(publicKey, baseDir, 'auth.jwt.publicKey', problems)
    if (auth.jwt.algorithms?.some((alg) => alg.toLowerCase() === 'none') === true) problems.push('auth.jwt.algorithms: "none" is never allowed')
  }
  if (auth?.apiKeys !== undefined) configured.add('apiKey')
  if (auth?.forward !== undefined) configured.add('forward')

  const prefixes = new Map<string, number>()
  manifest.routes.forEach((route, i) => {
    const at = `routes[${i}]`
    if (!upstreamNames.includes(route.upstream)) {
      problems.push(`${at}.upstream: unknown upstream ${JSON.stringify(route.upstream)} (known: ${upstreamNames.join(', ')})`)
    }
    if (route.prefix.split('/').some((segment) => segment === '.' || segment === '..')) {
      problems.push(`${at}.prefix: must not contain dot segments`)
    }
    // Routes with a path template may share a prefix with each other and with one plain route.
    const routeKey = route.path === undefined ? route.prefix : `${route.prefix}${route.path}`
    const first = prefixes.get(routeKey)
    if (first !== undefined) {
      if (route.path === undefined) problems.push(`${at}.prefix: ${JSON.stringify(route.prefix)} is already the prefix of routes[${first}]`)
      else problems.push(`${at}.path: ${JSON.stringify(route.path)} under ${JSON.stringify(route.prefix)} is already routes[${first}]`)
    } else prefixes.set(routeKey, i)

    if (route.auth !== false) {
      if (configured.size === 0) {
        problems.push(`${at}.auth: the route requires authentication but the manifest configures no method (add an auth section, or set auth: false for a public route)`)
      }
      route.auth?.methods?.forEach((method, j) => {
        if (!configured.has(method)) {
          const section = method === 'apiKey' ? 'auth.apiKeys' : `auth.${method}`
          problems.push(`${at}.auth.methods[${j}]: ${JSON.stringify(method)} is not configured (${section} is missing)`)
        }
      })
    }
    if (route.websocket === true && route.methods !== undefined && !route.methods.includes('GET')) {
      problems.push(`${at}.methods: a websocket route must allow GET (the upgrade request)`)
    }
  })

  problems.push(...contractProblems(manifest, baseDir))

  const server = manifest.server
  if (server?.tls !== undefined) {
    const cert = readable(server.tls.cert, baseDir, 'server.tls.cert', problems)
    const key = readable(server.tls.key, baseDir, 'server.tls.key', problems)
    if (cert !== undefined && key !== undefined) tlsProblems(cert, key, problems)
  }
  const endpoints: Array<{ at: string, path: string }> = []
  for (const key of ['docs', 'metrics', 'health'] as const) {
    const path = server?.[key] ?? SERVER_DEFAULTS[key]
    if (typeof path !== 'string') continue
    endpoints.push({ at: `server.${key}`, path })
    manifest.routes.forEach((route, i) => {
      if (overlaps(path, route.prefix)) problems.push(`server.${key}: ${JSON.stringify(path)} collides with routes[${i}].prefix ${JSON.stringify(route.prefix)}`)
    })
  }
  // The gateway's own endpoints must not overlap each other either (the docs own their subpaths).
  endpoints.push({ at: 'the readiness endpoint', path: '/readyz' })
  for (let i = 0; i < endpoints.length; i++) {
    for (let j = i + 1; j < endpoints.length; j++) {
      const [a, b] = [endpoints[i]!, endpoints[j]!]
      if (overlaps(a.path, b.path)) problems.push(`${a.at}: ${JSON.stringify(a.path)} collides with ${b.at}${b.at.startsWith('server.') ? ` ${JSON.stringify(b.path)}` : ''}`)
    }
  }
  return problems
}

/**
 * Every problem of a manifest object, as `path: message` (empty when it is valid).
 * `baseDir` is where relative key and certificate paths resolve.
 */
export function manifestProblems (value: unknown, baseDir = process.cwd()): string[] {
  if (!validateShape(value)) return shapeProblems(validateShape.errors ?? [])
  return meaningProblems(value as unknown as Manifest, baseDir)
}
