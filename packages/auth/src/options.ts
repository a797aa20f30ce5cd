import { createPublicKey, type KeyObject } from 'node:crypto'
import { headerAlias, HOP_BY_HOP_HEADERS, parseDuration, type AuthMethod, type Duration } from '@tollgate/common'
import { InvalidOptionError, InvalidRouteConfigError } from './errors.js'

/** Every JWS algorithm the plugin can verify. `none` is never one of them. */
export const JWT_ALGORITHMS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA'
] as const

export type JwtAlgorithm = typeof JWT_ALGORITHMS[number]

const HMAC_ALGORITHMS: readonly JwtAlgorithm[] = ['HS256', 'HS384', 'HS512']
const RSA_ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
export const ASYMMETRIC_ALGORITHMS: readonly JwtAlgorithm[] = JWT_ALGORITHMS.filter((alg) => !alg.startsWith('HS'))

/** The smallest HMAC secret accepted without `insecureWeakSecret` (RFC 7518 §3.2: at least the hash size). */
export const MIN_SECRET_BYTES = 32

export interface JwtOptions {
  /** Shared secret for HS256/384/512. At least 32 bytes unless `insecureWeakSecret` is set. */
  secret?: string
  /** One PEM public key (SPKI, PKCS#1 or an X.509 certificate): its contents, not a path. */
  publicKey?: string
  /** URL of a JSON Web Key Set. Keys are cached and refetched on an unknown `kid`. */
  jwksUrl?: string
  /** Accepted `iss` value(s). */
  issuer?: string | string[]
  /** Accepted `aud` value(s): a token is accepted when one of its audiences is listed. */
  audience?: string | string[]
  /** Allow-list of algorithms. Default: HS256 for a secret, what the key supports for a public key, every asymmetric algorithm for a JWKS. */
  algorithms?: string[]
  /** Leeway for `exp` and `nbf`. Default `0`. */
  clockTolerance?: Duration
  /** Claim holding role names (a dotted path such as `realm_access.roles` also works). Default `roles`. */
  rolesClaim?: string
  /** Claim holding permission names. Default `permissions`. */
  permissionsClaim?: string
  /** Minimum interval between two JWKS fetches caused by an unknown `kid`. Default `30s`. */
  jwksCooldown?: Duration
  /** Known keys are refetched after this long (so revoked keys disappear). Default `10m`. */
  jwksMaxAge?: Duration
  /** Timeout of one JWKS fetch. Default `5s`. */
  jwksTimeout?: Duration
  /** Accept an HMAC secret shorter than 32 bytes (a warning is logged). Default `false`. */
  insecureWeakSecret?: boolean
  /**
   * Most verified tokens remembered (LRU, keyed by the token's SHA-256), so a token seen again
   * skips signature verification. An entry is never used past the token's `exp` (nor before its
   * `nbf`), and every entry is dropped when the JWKS changes. `0` turns the cache off. Default `10000`.
   */
  tokenCacheSize?: number
}

export interface ApiKeyEntry {
  /** The identity (`sub`) of requests made with this key. */
  id: string
  /** SHA-256 of the key, hex encoded. Keys are never configured in clear. */
  sha256: string
  roles?: string[]
  permissions?: string[]
}

export interface ApiKeysOptions {
  /** Request header carrying the key. Default `x-api-key`. */
  header?: string
  keys: ApiKeyEntry[]
  /** Query-string parameter that may also carry the key. Default: none (keys in URLs end up in logs). */
  query?: string
}

export interface ForwardOptions {
  /** The auth service's validate endpoint, called with GET. */
  url: string
  /** Client request headers sent to the auth service. Default `['authorization', 'cookie']`. */
  forwardHeaders?: string[]
  /** Headers of the auth service's 2xx answer that carry the identity. */
  identityHeaders: { id: string, roles?: string, permissions?: string }
  /** How long an allow decision is cached per credential. Default `0` (no cache). */
  cacheTtl?: Duration
  /** Most cached decisions kept. Default `10000`. */
  cacheMax?: number
  /** No answer within this: 503, never an allow. Default `2s`. */
  timeout?: Duration
}

export interface AuthOptions {
  jwt?: JwtOptions
  apiKeys?: ApiKeysOptions
  forward?: ForwardOptions
  /** Headers set on authenticated requests, header name -> claim (`sub`, the roles claim, ...). Client copies are always removed. */
  identityHeaders?: Record<string, string>
  /** What a route without `config.auth` requires. Default `authenticated`. */
  defaultRoute?: 'authenticated' | 'public'
  /** `Retry-After` sent with 503 answers. Default `5s`. */
  retryAfter?: Duration
  /**
   * Level of the per-request lines about a refusal (`authentication refused`) and a 503
   * (`authentication unavailable`, which is at `warn` while this is `info`). `debug` when
   * another line per request already carries the error, as the gateway's request log does.
   * Default `info`.
   */
  refusalLogLevel?: 'info' | 'debug'
  /** Clock (ms since the epoch) for token times, JWKS cooldown and the forward cache. Default `Date.now`. */
  now?: () => number
}

export interface ResolvedJwt {
  source: 'secret' | 'publicKey' | 'jwks'
  secret?: string
  publicKey?: KeyObject
  publicKeyPem?: string
  jwksUrl?: string
  issuer: readonly string[] | undefined
  audience: readonly string[] | undefined
  algorithms: readonly JwtAlgorithm[]
  clockToleranceMs: number
  rolesClaim: string
  permissionsClaim: string
  jwksCooldownMs: number
  jwksMaxAgeMs: number
  jwksTimeoutMs: number
  weakSecret: boolean
  tokenCacheSize: number
}

export interface ResolvedApiKey {
  id: string
  digest: Buffer
  roles: readonly string[]
  permissions: readonly string[]
}

export interface ResolvedApiKeys {
  header: string
  keys: readonly ResolvedApiKey[]
  query: string | undefined
}

export interface ResolvedForward {
  url: string
  forwardHeaders: readonly string[]
  identityHeaders: { id: string, roles: string | undefined, permissions: string | undefined }
  cacheTtlMs: number
  cacheMax: number
  timeoutMs: number
}

export interface ResolvedOptions {
  jwt: ResolvedJwt | undefined
  apiKeys: ResolvedApiKeys | undefined
  forward: ResolvedForward | undefined
  /** [header (lower case), claim] pairs. */
  identityHeaders: ReadonlyArray<readonly [string, string]>
  /** Aliases (see headerAlias) of every identity header name. */
  identityAliases: ReadonlySet<string>
  methods: readonly AuthMethod[]
  defaultRoute: 'authenticated' | 'public'
  retryAfterSeconds: number
  refusalLogLevel: 'info' | 'debug'
  now: () => number
  /** Warnings to log once at registration. */
  warnings: readonly string[]
}

/** One problem found in the options. */
export interface OptionProblem {
  path: string
  message: string
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const SHA256_HEX = /^[0-9a-fA-F]{64}$/
const FORBIDDEN_FORWARD_HEADERS = new Set([
  'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port',
  'x-forwarded-prefix', 'x-forwarded-method', 'x-forwarded-uri', 'x-real-ip', 'x-original-url',
  'x-original-method', 'host', 'content-length'
])
const RESERVED_IDENTITY_HEADERS = new Set([
  'authorization', 'cookie', 'host', 'content-length', 'content-type', 'x-request-id', 'traceparent',
  ...FORBIDDEN_FORWARD_HEADERS, ...HOP_BY_HOP_HEADERS
])

const KNOWN_KEYS = {
  root: ['jwt', 'apiKeys', 'forward', 'identityHeaders', 'defaultRoute', 'retryAfter', 'refusalLogLevel', 'now'],
  jwt: ['secret', 'publicKey', 'jwksUrl', 'issuer', 'audience', 'algorithms', 'clockTolerance', 'rolesClaim',
    'permissionsClaim', 'jwksCooldown', 'jwksMaxAge', 'jwksTimeout', 'insecureWeakSecret',
    'tokenCacheSize'],
  apiKeys: ['header', 'keys', 'query'],
  apiKey: ['id', 'sha256', 'roles', 'permissions'],
  forward: ['url', 'forwardHeaders', 'identityHeaders', 'cacheTtl', 'cacheMax', 'timeout'],
  forwardIdentity: ['id', 'roles', 'permissions'],
  route: ['methods', 'roles', 'permissions']
} as const

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

class Problems {
  readonly list: OptionProblem[] = []
  constructor (readonly prefix: string) {}

  /** `key` under the prefix; `''` is the options object itself: the prefix, else `options`. */
  path (key: string): string {
    if (key === '') return this.prefix === '' ? 'options' : this.prefix
    return this.prefix === '' ? key : `${this.prefix}.${key}`
  }

  add (key: string, message: string): void {
    this.list.push({ path: this.path(key), message })
  }

  unknownKeys (value: Record<string, unknown>, known: readonly string[], key: string): void {
    for (const name of Object.keys(value)) {
      if (!known.includes(name)) this.add(key === '' ? name : `${key}.${name}`, 'unknown key')
    }
  }

  duration (value: unknown, key: string, fallback: Duration): number {
    try {
      return parseDuration(value ?? fallback, this.path(key))
    } catch (error) {
      this.list.push({ path: this.path(key), message: (error as Error).message.replace(/^[^:]*: /, '') })
      return 0
    }
  }

  nonEmptyString (value: unknown, key: string): value is string {
    if (typeof value === 'string' && value.length > 0) return true
    this.add(key, 'must be a non-empty string')
    return false
  }

  stringList (value: unknown, key: string, { allowSingle = false, allowEmpty = true } = {}): string[] | undefined {
    if (allowSingle && typeof value === 'string') value = [value]
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item.length === 0)) {
      this.add(key, `must be ${allowSingle ? 'a string or ' : ''}a list of non-empty strings`)
      return undefined
    }
    if (!allowEmpty && value.length === 0) {
      this.add(key, 'must not be empty')
      return undefined
    }
    return [...value as string[]]
  }

  headerName (value: unknown, key: string): string | undefined {
    if (typeof value !== 'string' || !HEADER_NAME.test(value)) {
      this.add(key, `must be a valid header name, got ${JSON.stringify(value)}`)
      return undefined
    }
    return value.toLowerCase()
  }

  throwIfAny (): void {
    if (this.list.length === 0) return
    const error = new InvalidOptionError(this.list.map((problem) => `${problem.path}: ${problem.message}`).join('\n'))
    ;(error as unknown as { problems: OptionProblem[] }).problems = this.list
    throw error
  }
}

/** The algorithms a public key can verify. */
export function algorithmsForKey (key: KeyObject): JwtAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return [...RSA_ALGORITHMS]
    case 'rsa-pss': return ['PS256', 'PS384', 'PS512']
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1' || curve === 'P-256') return ['ES256']
      if (curve === 'secp384r1' || curve === 'P-384') return ['ES384']
      if (curve === 'secp521r1' || curve === 'P-521') return ['ES512']
      return []
    }
    case 'ed25519':
    case 'ed448':
      return ['EdDSA']
    default:
      return []
  }
}

function looksLikePublicKey (secret: string): boolean {
  const trimmed = secret.trim()
  if (trimmed.includes('-----BEGIN') || trimmed.startsWith('ssh-') || trimmed.startsWith('MII')) return true
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed)
      return isRecord(parsed) && ('kty' in parsed || 'keys' in parsed)
    } catch {
      return false
    }
  }
  return false
}

function resolveAlgorithms (value: unknown, problems: Problems): JwtAlgorithm[] | undefined {
  if (value === undefined) return undefined
  const list = problems.stringList(value, 'jwt.algorithms', { allowEmpty: false })
  if (list === undefined) return undefined
  const result: JwtAlgorithm[] = []
  for (const alg of list) {
    if (alg.toLowerCase() === 'none') {
      problems.add('jwt.algorithms', '"none" is never allowed: unsigned tokens are always refused')
    } else if (!(JWT_ALGORITHMS as readonly string[]).includes(alg)) {
      problems.add('jwt.algorithms', `unknown algorithm ${JSON.stringify(alg)} (known: ${JWT_ALGORITHMS.join(', ')})`)
    } else if (!result.includes(alg as JwtAlgorithm)) {
      result.push(alg as JwtAlgorithm)
    }
  }
  return result
}

function resolveJwt (input: unknown, problems: Problems, warnings: string[]): ResolvedJwt | undefined {
  if (input === undefined) return undefined
  if (!isRecord(input)) {
    problems.add('jwt', 'must be an object')
    return undefined
  }
  problems.unknownKeys(input, KNOWN_KEYS.jwt, 'jwt')
  const sources = (['secret', 'publicKey', 'jwksUrl'] as const).filter((key) => input[key] !== undefined)
  if (sources.length !== 1) {
    problems.add('jwt', `set exactly one of secret, publicKey or jwksUrl${sources.length > 1 ? ` (got ${sources.join(', ')})` : ''}`)
    return undefined
  }
  const configured = resolveAlgorithms(input.algorithms, problems)
  const [source] = sources as ['secret' | 'publicKey' | 'jwksUrl']
  let algorithms: JwtAlgorithm[] = []
  let secret: string | undefined
  let publicKey: KeyObject | undefined
  let publicKeyPem: string | undefined
  let jwksUrl: string | undefined
  let weakSecret = false

  if (input.insecureWeakSecret !== undefined && typeof input.insecureWeakSecret !== 'boolean') {
    problems.add('jwt.insecureWeakSecret', 'must be a boolean')
  }

  if (source === 'secret') {
    if (problems.nonEmptyString(input.secret, 'jwt.secret')) {
      secret = input.secret
      if (looksLikePublicKey(secret)) {
        problems.add('jwt.secret', 'looks like a public key (PEM or JWK): HMAC with a public key lets anyone forge tokens; use jwt.publicKey or jwt.jwksUrl')
      } else if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
        if (input.insecureWeakSecret === true) {
          weakSecret = true
          warnings.push(`jwt.secret is shorter than ${MIN_SECRET_BYTES} bytes: tokens can be brute-forced (allowed by jwt.insecureWeakSecret)`)
        } else {
          problems.add('jwt.secret', `must be at least ${MIN_SECRET_BYTES} bytes (set jwt.insecureWeakSecret: true to accept a weak secret)`)
        }
      }
    }
    algorithms = configured ?? ['HS256']
    const wrong = algorithms.filter((alg) => !HMAC_ALGORITHMS.includes(alg))
    if (wrong.length > 0) problems.add('jwt.algorithms', `${wrong.join(', ')} cannot be used with jwt.secret (only HS256, HS384, HS512)`)
  } else if (source === 'publicKey') {
    if (problems.nonEmptyString(input.publicKey, 'jwt.publicKey')) {
      if (/PRIVATE KEY/.test(input.publicKey)) {
        problems.add('jwt.publicKey', 'is a private key: configure the public key only')
      } else {
        try {
          publicKey = createPublicKey(input.publicKey)
          publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
        } catch (error) {
          problems.add('jwt.publicKey', `is not a PEM public key (${(error as Error).message})`)
        }
      }
    }
    if (publicKey !== undefined) {
      const supported = algorithmsForKey(publicKey)
      if (supported.length === 0) problems.add('jwt.publicKey', `unsupported key type ${String(publicKey.asymmetricKeyType)}`)
      algorithms = configured ?? (supported.includes('RS256') ? ['RS256'] : supported)
      const wrong = algorithms.filter((alg) => !supported.includes(alg))
      if (wrong.length > 0 && supported.length > 0) {
        problems.add('jwt.algorithms', `${wrong.join(', ')} cannot be used with this ${String(publicKey.asymmetricKeyType)} public key (it supports ${supported.join(', ')})`)
      }
    }
  } else {
    if (problems.nonEmptyString(input.jwksUrl, 'jwt.jwksUrl')) {
      let url: URL | undefined
      try {
        url = new URL(input.jwksUrl)
      } catch {
        problems.add('jwt.jwksUrl', `is not a URL: ${JSON.stringify(input.jwksUrl)}`)
      }
      if (url !== undefined) {
        if (url.protocol !== 'http:' && url.protocol !== 'https:') {
          problems.add('jwt.jwksUrl', 'must be an http or https URL')
        } else {
          jwksUrl = url.href
          if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
            warnings.push('jwt.jwksUrl uses plain http to a non-loopback host: keys can be replaced in transit')
          }
        }
      }
    }
    algorithms = configured ?? [...ASYMMETRIC_ALGORITHMS]
    const wrong = algorithms.filter((alg) => HMAC_ALGORITHMS.includes(alg))
    if (wrong.length > 0) problems.add('jwt.algorithms', `${wrong.join(', ')} cannot be used with jwt.jwksUrl (a key set holds public keys)`)
  }
  const issuer = input.issuer === undefined ? undefined : problems.stringList(input.issuer, 'jwt.issuer', { allowSingle: true, allowEmpty: false })
  const audience = input.audience === undefined ? undefined : problems.stringList(input.audience, 'jwt.audience', { allowSingle: true, allowEmpty: false })
  if (input.audience === undefined) warnings.push('jwt.audience is not set: tokens issued for any audience are accepted')
  const rolesClaim = input.rolesClaim ?? 'roles'
  const permissionsClaim = input.permissionsClaim ?? 'permissions'
  problems.nonEmptyString(rolesClaim, 'jwt.rolesClaim')
  problems.nonEmptyString(permissionsClaim, 'jwt.permissionsClaim')
  const jwksCooldownMs = problems.duration(input.jwksCooldown, 'jwt.jwksCooldown', '30s')
  const jwksMaxAgeMs = problems.duration(input.jwksMaxAge, 'jwt.jwksMaxAge', '10m')
  const jwksTimeoutMs = problems.duration(input.jwksTimeout, 'jwt.jwksTimeout', '5s')
  if (jwksTimeoutMs === 0 && input.jwksTimeout !== undefined) problems.add('jwt.jwksTimeout', 'must be greater than 0')
  const tokenCacheSize = input.tokenCacheSize ?? 10_000
  if (typeof tokenCacheSize !== 'number' || !Number.isSafeInteger(tokenCacheSize) || tokenCacheSize < 0) problems.add('jwt.tokenCacheSize', 'must be a non-negative integer')

  return {
    source: source === 'jwksUrl' ? 'jwks' : source,
    secret,
    publicKey,
    publicKeyPem,
    jwksUrl,
    issuer: issuer === undefined ? undefined : Object.freeze(issuer),
    audience: audience === undefined ? undefined : Object.freeze(audience),
    algorithms: Object.freeze(algorithms),
    clockToleranceMs: problems.duration(input.clockTolerance, 'jwt.clockTolerance', 0),
    rolesClaim: rolesClaim as string,
    permissionsClaim: permissionsClaim as string,
    jwksCooldownMs,
    jwksMaxAgeMs,
    jwksTimeoutMs,
    weakSecret,
    tokenCacheSize: tokenCacheSize as number
  }
}

function isLoopback (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname.startsWith('127.')
}

function resolveApiKeys (input: unknown, problems: Problems): ResolvedApiKeys | undefined {
  if (input === undefined) return undefined
  if (!isRecord(input)) {
    problems.add('apiKeys', 'must be an object')
    return undefined
  }
  problems.unknownKeys(input, KNOWN_KEYS.apiKeys, 'apiKeys')
  const header = problems.headerName(input.header ?? 'x-api-key', 'apiKeys.header') ?? 'x-api-key'
  let query: string | undefined
  if (input.query !== undefined && problems.nonEmptyString(input.query, 'apiKeys.query')) query = input.query
  const keys: ResolvedApiKey[] = []
  if (!Array.isArray(input.keys) || input.keys.length === 0) {
    problems.add('apiKeys.keys', 'must be a non-empty list')
  } else {
    const seen = new Set<string>()
    input.keys.forEach((entry: unknown, index) => {
      const at = `apiKeys.keys[${index}]`
      if (!isRecord(entry)) {
        problems.add(at, 'must be an object')
        return
      }
      problems.unknownKeys(entry, KNOWN_KEYS.apiKey, at)
      const idOk = problems.nonEmptyString(entry.id, `${at}.id`)
      if (idOk && /[\r\n\0]/.test(entry.id as string)) problems.add(`${at}.id`, 'must not contain CR, LF or NUL')
      let digest: Buffer | undefined
      if (typeof entry.sha256 !== 'string' || !SHA256_HEX.test(entry.sha256)) {
        problems.add(`${at}.sha256`, 'must be the SHA-256 of the key as 64 hex characters (keys are never configured in clear)')
      } else if (seen.has(entry.sha256.toLowerCase())) {
        problems.add(`${at}.sha256`, 'duplicates another key')
      } else {
        seen.add(entry.sha256.toLowerCase())
        digest = Buffer.from(entry.sha256, 'hex')
      }
      const roles = entry.roles === undefined ? [] : problems.stringList(entry.roles, `${at}.roles`)
      const permissions = entry.permissions === undefined ? [] : problems.stringList(entry.permissions, `${at}.permissions`)
      if (idOk && digest !== undefined && roles !== undefined && permissions !== undefined) {
        keys.push(Object.freeze({ id: entry.id as string, digest, roles: Object.freeze(roles), permissions: Object.freeze(permissions) }))
      }
    })
  }
  return { header, keys: Object.freeze(keys), query }
}

function resolveForward (input: unknown, problems: Problems): ResolvedForward | undefined {
  if (input === undefined) return undefined
  if (!isRecord(input)) {
    problems.add('forward', 'must be an object')
    return undefined
  }
  problems.unknownKeys(input, KNOWN_KEYS.forward, 'forward')
  let url = ''
  if (problems.nonEmptyString(input.url, 'forward.url')) {
    try {
      const parsed = new URL(input.url)
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') problems.add('forward.url', 'must be an http or https URL')
      url = parsed.href
    } catch {
      problems.add('forward.url', `is not a URL: ${JSON.stringify(input.url)}`)
    }
  }
  const forwardHeaders: string[] = []
  const list = problems.stringList(input.forwardHeaders ?? ['authorization', 'cookie'], 'forward.forwardHeaders', { allowEmpty: false }) ?? []
  list.forEach((name, index) => {
    const header = problems.headerName(name, `forward.forwardHeaders[${index}]`)
    if (header === undefined) return
    if (FORBIDDEN_FORWARD_HEADERS.has(headerAlias(header)) || HOP_BY_HOP_HEADERS.has(header)) {
      problems.add(`forward.forwardHeaders[${index}]`, `${header} is computed by the gateway, never taken from the client`)
    } else if (!forwardHeaders.includes(header)) {
      forwardHeaders.push(header)
    }
  })
  const identityHeaders = { id: '', roles: undefined as string | undefined, permissions: undefined as string | undefined }
  if (!isRecord(input.identityHeaders)) {
    problems.add('forward.identityHeaders', 'must be an object with at least `id`')
  } else {
    problems.unknownKeys(input.identityHeaders, KNOWN_KEYS.forwardIdentity, 'forward.identityHeaders')
    identityHeaders.id = problems.headerName(input.identityHeaders.id, 'forward.identityHeaders.id') ?? ''
    if (input.identityHeaders.roles !== undefined) identityHeaders.roles = problems.headerName(input.identityHeaders.roles, 'forward.identityHeaders.roles')
    if (input.identityHeaders.permissions !== undefined) identityHeaders.permissions = problems.headerName(input.identityHeaders.permissions, 'forward.identityHeaders.permissions')
  }
  const cacheMax = input.cacheMax ?? 10_000
  if (typeof cacheMax !== 'number' || !Number.isSafeInteger(cacheMax) || cacheMax < 0) problems.add('forward.cacheMax', 'must be a non-negative integer')
  const timeoutMs = problems.duration(input.timeout, 'forward.timeout', '2s')
  if (timeoutMs === 0 && input.timeout !== undefined) problems.add('forward.timeout', 'must be greater than 0')
  return {
    url,
    forwardHeaders: Object.freeze(forwardHeaders),
    identityHeaders,
    cacheTtlMs: problems.duration(input.cacheTtl, 'forward.cacheTtl', 0),
    cacheMax: cacheMax as number,
    timeoutMs
  }
}

/**
 * Validates the plugin options and applies defaults. Pure: throws `TOLLGATE_AUTH_INVALID_OPTION`
 * listing every problem as `path: message` (the error's `problems` holds them one by one).
 * `path` prefixes each path (`auth` gives `auth.jwt.secret: ...`); a problem with the options
 * object as a whole is reported under `path`, or `options` without one.
 */
export function resolveOptions (input: AuthOptions | undefined, { path = '' }: { path?: string } = {}): ResolvedOptions {
  const problems = new Problems(path)
  const warnings: string[] = []
  const options: unknown = input ?? {}
  if (!isRecord(options)) {
    problems.add('', 'must be an object')
    problems.throwIfAny()
  }
  const raw = options as Record<string, unknown>
  problems.unknownKeys(raw, KNOWN_KEYS.root, '')

  const jwt = resolveJwt(raw.jwt, problems, warnings)
  const apiKeys = resolveApiKeys(raw.apiKeys, problems)
  const forward = resolveForward(raw.forward, problems)

  const identityHeaders: Array<readonly [string, string]> = []
  const identityAliases = new Set<string>()
  if (raw.identityHeaders !== undefined) {
    if (!isRecord(raw.identityHeaders)) {
      problems.add('identityHeaders', 'must be an object of header name -> claim')
    } else {
      for (const [name, claim] of Object.entries(raw.identityHeaders)) {
        const at = `identityHeaders.${name}`
        const header = problems.headerName(name, at)
        if (header === undefined) continue
        const alias = headerAlias(header)
        if (identityAliases.has(alias)) {
          problems.add(at, 'is the same header as another identity header (names compare case-insensitively, with _ and . read as -)')
        } else if (RESERVED_IDENTITY_HEADERS.has(alias) || (apiKeys !== undefined && alias === headerAlias(apiKeys.header))) {
          problems.add(at, `${header} cannot be an identity header`)
        } else if (problems.nonEmptyString(claim, at)) {
          identityAliases.add(alias)
          identityHeaders.push(Object.freeze([header, claim]))
        }
      }
    }
  }

  // The forward-auth service's identity headers are trusted when it sends them: a client's
  // copies are removed too, so that an upstream reading them (as Traefik users do) can trust them.
  if (forward !== undefined) {
    for (const name of [forward.identityHeaders.id, forward.identityHeaders.roles, forward.identityHeaders.permissions]) {
      if (name === undefined || name === '') continue
      const alias = headerAlias(name)
      if (!RESERVED_IDENTITY_HEADERS.has(alias) && !forward.forwardHeaders.some((header) => headerAlias(header) === alias)) identityAliases.add(alias)
    }
  }

  const defaultRoute = raw.defaultRoute ?? 'authenticated'
  if (defaultRoute !== 'authenticated' && defaultRoute !== 'public') problems.add('defaultRoute', 'must be "authenticated" or "public"')
  const retryAfterMs = problems.duration(raw.retryAfter, 'retryAfter', '5s')
  const refusalLogLevel = raw.refusalLogLevel ?? 'info'
  if (refusalLogLevel !== 'info' && refusalLogLevel !== 'debug') problems.add('refusalLogLevel', 'must be "info" or "debug"')
  if (raw.now !== undefined && typeof raw.now !== 'function') problems.add('now', 'must be a function returning milliseconds')

  const methods: AuthMethod[] = []
  if (jwt !== undefined) methods.push('jwt')
  if (apiKeys !== undefined) methods.push('apiKey')
  if (forward !== undefined) methods.push('forward')
  if (methods.length === 0 && defaultRoute === 'authenticated' && raw.jwt === undefined && raw.apiKeys === undefined && raw.forward === undefined) {
    problems.add('', 'configure at least one of jwt, apiKeys or forward (or set defaultRoute: "public")')
  }
  problems.throwIfAny()

  return Object.freeze({
    jwt: jwt === undefined ? undefined : Object.freeze(jwt),
    apiKeys: apiKeys === undefined ? undefined : Object.freeze(apiKeys),
    forward: forward === undefined ? undefined : Object.freeze(forward),
    identityHeaders: Object.freeze(identityHeaders),
    identityAliases,
    methods: Object.freeze(methods),
    defaultRoute: defaultRoute as 'authenticated' | 'public',
    retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    refusalLogLevel: refusalLogLevel as 'info' | 'debug',
    now: (raw.now as (() => number) | undefined) ?? Date.now,
    warnings: Object.freeze(warnings)
  })
}

/** A route's resolved auth requirement. */
export type RouteAuth =
  | { readonly public: true }
  | { readonly public: false, readonly methods: readonly AuthMethod[], readonly roles: readonly string[], readonly permissions: readonly string[] }

/** Resolves a route's `config.auth` (undefined: the plugin's `defaultRoute`). Throws naming `where`. */
export function resolveRouteAuth (value: unknown, options: ResolvedOptions, where: string): RouteAuth {
  const fail = (message: string): never => { throw new InvalidRouteConfigError(`${where}: config.auth${message}`) }
  if (value === undefined) {
    return options.defaultRoute === 'public' ? { public: true } : { public: false, methods: options.methods, roles: [], permissions: [] }
  }
  if (value === false) return { public: true }
  if (value === true) value = {}
  if (!isRecord(value)) return fail(' must be false or an object { methods?, roles?, permissions? }')
  for (const key of Object.keys(value)) {
    if (!(KNOWN_KEYS.route as readonly string[]).includes(key)) fail(`.${key}: unknown key`)
  }
  const list = (key: 'methods' | 'roles' | 'permissions'): string[] => {
    const item = value[key]
    if (item === undefined) return []
    if (!Array.isArray(item) || item.some((entry) => typeof entry !== 'string' || entry.length === 0)) {
      return fail(`.${key} must be a list of non-empty strings`)
    }
    return [...item as string[]]
  }
  let methods = list('methods') as AuthMethod[]
  if (value.methods !== undefined && methods.length === 0) fail('.methods must not be empty (use auth: false for a public route)')
  for (const method of methods) {
    if (method !== 'jwt' && method !== 'apiKey' && method !== 'forward') fail(`.methods: unknown method ${JSON.stringify(method)} (known: jwt, apiKey, forward)`)
    if (!options.methods.includes(method)) fail(`.methods: ${method} is not configured in the auth plugin options`)
  }
  if (methods.length === 0) {
    methods = [...options.methods]
    if (methods.length === 0) fail(': no authentication method is configured in the auth plugin options')
  }
  return Object.freeze({
    public: false,
    methods: Object.freeze(methods),
    roles: Object.freeze(list('roles')),
    permissions: Object.freeze(list('permissions'))
  })
}
