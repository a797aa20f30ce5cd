import t from 'tap'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { pathProblem } from '@tollgate/common'
import type { Manifest } from '../../src/index.js'
import { exchange, recordingUpstream, startGateway, type RecordingUpstream, type UpstreamRequest } from '../helpers/hostile.js'

/*
 * Property: for every generated raw request (method, request target built from hostile
 * path segments, a query, header noise, with or without a credential) the gateway
 * answers without crashing, and what it did agrees with one reference model:
 *
 *   - a raw non-ASCII byte in the target (Node's parser)          -> 400, nothing forwarded
 *   - a malformed percent-encoding in the path (Fastify's router) -> 400, nothing forwarded
 *   - TRACE                                                      -> 405, nothing forwarded
 *   - encoded unreserved characters (%41, %7e) are decoded first; then
 *     the path (before "?") is not in normal form (pathProblem)  -> 400, nothing forwarded
 *   - no route prefix matches (exactly, or followed by "/")      -> 404, nothing forwarded
 *   - a method the routes do not proxy                           -> 404/405, nothing forwarded
 *   - a protected route without a (valid) credential             -> 401; without the role -> 403
 *   - otherwise exactly one request reaches the matched route's upstream (no other
 *     upstream sees anything), with url = rewritePrefix + rest of the path + query,
 *     the method unchanged, and the identity header equal to the verified identity.
 *
 * Independently of pathProblem, every path the gateway forwards must already be in
 * normal form by WHATWG URL rules and free of encoded separators and dot segments.
 * Fixed seed and run count: deterministic. A failing input found here becomes a named
 * regression test under test/hardening/.
 */

// FUZZ_SEED / FUZZ_RUNS explore further by hand; CI always runs the fixed seed.
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_121)
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)

interface RouteModel { prefix: string, upstream: string, rewritePrefix: string, auth: 'public' | 'key' | 'admin' }

const ROUTES: RouteModel[] = [
  { prefix: '/api/public', upstream: 'public', rewritePrefix: '', auth: 'public' },
  { prefix: '/api/posts', upstream: 'posts', rewritePrefix: '/v1/posts', auth: 'key' },
  { prefix: '/api/admin', upstream: 'admin', rewritePrefix: '/admin', auth: 'admin' }
]
const PROXIED = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const KEY = 'partner-key-0123456789'

const SEGMENTS = [
  'api', 'posts', 'public', 'admin', 'API', 'Posts', 'x', 'a.b', '...', '.a', '~user', 'a-b_c',
  '.', '..', '%2e', '%2E', '%2e%2e', '.%2e', '%2f', '%2F', '%5c', '%5C', '\\', '', ';', ';x=1', 'a;b',
  '%61', '%41pi', '%70osts', '%7e', '%2d', '%5f', '%30', '%20', '%25', '%3b', '%3f', '%23', '%00', '%zz', '%',
  '%e2%82%ac', '%C3%A9', 'é', '€', '日本', '#frag', '@', ':', '!$&\'()*+,=', 'a,b'
]

const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SEGMENTS) },
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...'abcXYZ019-._~'), minLength: 1, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 3000 }).map((n) => 'L'.repeat(n)) }
)

const start = fc.constantFrom(['api', 'public'], ['api', 'posts'], ['api', 'admin'], ['api'], [] as string[])
const query = fc.option(fc.string({ unit: fc.constantFrom(...'abc=&%2e/.?#;x'), maxLength: 16 }).map((q) => `?${q}`), { nil: '' })
const method = fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'PURGE')

const FRAMING = /^(host|content-length|transfer-encoding|connection|expect|upgrade|te|trailer|keep-alive|authorization|x[-_.]api[-_.]key)$/i
const headerName = fc.oneof(
  fc.constantFrom('X-User-Id', 'x_user_id', 'x.user.id', 'X-User-Roles', 'X-Forwarded-For', 'x_forwarded_host', 'X-Original-URL',
    'X-HTTP-Method-Override', 'Forwarded', 'Cookie', 'Accept', 'X_Api_Key'),
  fc.string({ unit: fc.constantFrom(...'abcxyzXYZ-_.019!#$%&\'*+^`|~'), minLength: 1, maxLength: 20 })
).filter((name) => !FRAMING.test(name))
const headerValue = fc.string({ unit: fc.constantFrom(...'abc XYZ/..%2e:;=,@\t019admin'), maxLength: 40 })
const headers = fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 })

const input = fc.record({
  method,
  start,
  rest: fc.array(segment, { maxLength: 5 }),
  trailingSlash: fc.boolean(),
  query,
  headers,
  credential: fc.constantFrom<'none' | 'valid' | 'wrong'>('none', 'valid', 'valid', 'wrong')
})
type Input = typeof input extends fc.Arbitrary<infer T> ? T : never

function targetOf (value: Input): string {
  const path = `/${[...value.start, ...value.rest].join('/')}${value.trailingSlash ? '/' : ''}`
  return `${path}${value.query}`
}

interface Expected { status: number[], route: RouteModel | null }

/** The reference model: what must happen to a request, from its method, target and credential. */
function expected (value: Input, target: string): Expected {
  // Node's parser and the gateway see the target's bytes as latin1 characters.
  const seen = Buffer.from(target, 'utf8').toString('latin1')
  // Node's parser refuses raw bytes outside visible ASCII in the request target.
  if (/[^\x21-\x7e]/.test(seen)) return { status: [400], route: null }
  // TRACE is refused on every path, even one the router cannot parse.
  if (value.method === 'TRACE') return { status: [405], route: null }
  // Fastify's router refuses a malformed percent-encoding before any hook runs.
  if (/%(?![0-9a-f]{2})/i.test(seen.split('?')[0]!)) return { status: [400], route: null }
  // Encoded unreserved characters are decoded before routing (RFC 3986 6.2.2.2).
  const normal = normalised(seen)
  if (pathProblem(normal) !== null) return { status: [400], route: null }
  const path = normal.split('?')[0]!
  const route = ROUTES.find((r) => path === r.prefix || path.startsWith(`${r.prefix}/`)) ?? null
  if (!PROXIED.has(value.method)) return { status: [404, 405], route: null }
  if (route === null) return { status: [404], route: null }
  if (route.auth !== 'public' && value.credential !== 'valid') return { status: [401], route: null }
  if (route.auth === 'admin') return { status: [403], route: null }
  return { status: [200], route }
}

/** The target with percent-encoded unreserved characters of its path decoded, written independently of the gateway's. */
function normalised (target: string): string {
  const queryAt = target.indexOf('?')
  const path = queryAt === -1 ? target : target.slice(0, queryAt)
  const decoded = path.replace(/%([0-9a-f]{2})/gi, (encoded, hex: string) => {
    const character = String.fromCharCode(Number.parseInt(hex, 16))
    return /^[A-Za-z0-9\-._~]$/.test(character) ? character : encoded
  })
  return queryAt === -1 ? decoded : decoded + target.slice(queryAt)
}

/** An independent check that a forwarded path is in normal form. */
function isNormal (path: string): boolean {
  if (new URL(path, 'http://gateway.test').pathname !== path) return false
  return path.split('/').every((part) => {
    let decoded: string
    try {
      decoded = decodeURIComponent(part)
    } catch {
      return false
    }
    return decoded !== '.' && decoded !== '..' && !decoded.includes('/') && !decoded.includes('\\') && !decoded.includes('\u0000')
  })
}

function manifest (upstreams: Record<string, RecordingUpstream>): Manifest {
  return {
    version: 1,
    server: { docs: false },
    auth: {
      apiKeys: { header: 'x-api-key', keys: [{ id: 'partner-1', sha256: createHash('sha256').update(KEY).digest('hex'), roles: ['partner'] }] },
      identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' }
    },
    upstreams: Object.fromEntries(Object.entries(upstreams).map(([name, upstream]) => [name, { targets: [upstream.url] }])),
    routes: ROUTES.map((route) => ({
      prefix: route.prefix,
      upstream: route.upstream,
      rewritePrefix: route.rewritePrefix,
      auth: route.auth === 'public' ? false : route.auth === 'key' ? { methods: ['apiKey'] } : { methods: ['apiKey'], roles: ['admin'] }
    }))
  }
}

t.test('every generated request gets the route, forwarded path and auth decision of the reference model, and an answer', async (t) => {
  const upstreams: Record<string, RecordingUpstream> = {}
  for (const name of ['public', 'posts', 'admin']) {
    upstreams[name] = await recordingUpstream(name)
    t.teardown(upstreams[name].close)
  }
  const { port } = await startGateway(t, manifest(upstreams))
  const counts = (): number[] => Object.values(upstreams).map((upstream) => upstream.started.length)
  let forwarded = 0
  let refused = 0

  await fc.assert(fc.asyncProperty(input, async (value) => {
    const target = targetOf(value)
    const want = expected(value, target)
    const lines = [`${value.method} ${target} HTTP/1.1`, 'Host: gateway.test']
    for (const [name, headerValueText] of value.headers) lines.push(`${name}: ${headerValueText}`)
    if (value.credential !== 'none') lines.push(`X-Api-Key: ${value.credential === 'valid' ? KEY : 'not-a-key'}`)
    lines.push('Connection: close', '', '')
    const before = counts()
    const result = await exchange(port, Buffer.from(lines.join('\r\n'), 'utf8'), { responses: 1, head: value.method === 'HEAD' })
    const response = result.responses[0]
    const after = counts()
    const context = `${value.method} ${JSON.stringify(target)}`

    if (response === undefined) throw new Error(`${context}: no response (closed: ${String(result.closed)})`)
    if (!want.status.includes(response.status)) throw new Error(`${context}: status ${response.status}, model says ${want.status.join('/')}: ${response.body.slice(0, 200)}`)
    const grew = Object.keys(upstreams).filter((_, i) => after[i]! !== before[i]!)
    if (want.route === null) {
      refused++
      if (grew.length > 0) throw new Error(`${context}: refused with ${response.status} but ${grew.join(', ')} saw a request`)
      return
    }
    forwarded++
    if (grew.length !== 1 || grew[0] !== want.route.upstream) throw new Error(`${context}: expected one request at ${want.route.upstream}, saw ${grew.join(', ') || 'none'}`)
    const seen: UpstreamRequest = upstreams[want.route.upstream]!.started.at(-1)!
    if (after[Object.keys(upstreams).indexOf(want.route.upstream)]! - before[Object.keys(upstreams).indexOf(want.route.upstream)]! !== 1) {
      throw new Error(`${context}: more than one upstream request`)
    }
    const rest = normalised(target).slice(want.route.prefix.length)
    let url = want.route.rewritePrefix + rest
    if (!url.startsWith('/')) url = `/${url}`
    if (seen.url !== url) throw new Error(`${context}: upstream got ${JSON.stringify(seen.url)}, model says ${JSON.stringify(url)}`)
    if (seen.method !== value.method) throw new Error(`${context}: upstream got method ${seen.method}`)
    const forwardedPath = url.split('?')[0]!
    if (!isNormal(forwardedPath)) throw new Error(`${context}: forwarded ${JSON.stringify(forwardedPath)} is not in normal form`)
    const identity = want.route.auth === 'public' ? undefined : 'partner-1'
    if (seen.headers['x-user-id'] !== identity) throw new Error(`${context}: upstream x-user-id ${String(seen.headers['x-user-id'])}, expected ${String(identity)}`)
    const spoofed = seen.rawHeaders.filter((name, i) => i % 2 === 0 && /^x[-_.]user[-_.]/i.test(name))
    if (spoofed.length !== (identity === undefined ? 0 : 2)) throw new Error(`${context}: identity headers upstream: ${spoofed.join(', ')}`)
  }), { seed: SEED, numRuns: RUNS, endOnFailure: true })

  t.pass(`${RUNS} generated requests matched the model (${forwarded} forwarded, ${refused} refused)`)
  t.ok(forwarded > RUNS / 10, 'the generator reaches the upstreams often enough to test forwarding')
  t.ok(refused > RUNS / 10, 'and produces enough hostile paths to test refusal')
  const alive = await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n', { responses: 1 })
  t.equal(alive.responses[0]?.status, 200, 'the gateway still serves after the run')
})
