import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { request, type Dispatcher } from 'undici'
import { algorithmsForKey, type JwtAlgorithm } from './options.js'

/** How often a store with no key set loaded yet may try again. */
const UNLOADED_RETRY_MS = 5000

/** One usable key of the set. */
export interface JwksKey {
  kid: string | undefined
  /** SPKI PEM (what fast-jwt takes from a key callback). */
  pem: string
  /** Algorithms this key may verify: its type's, narrowed by its `alg` and the configured allow-list. */
  algorithms: ReadonlySet<string>
}

export interface JwksStoreOptions {
  url: string
  algorithms: readonly JwtAlgorithm[]
  cooldownMs: number
  maxAgeMs: number
  timeoutMs: number
  now: () => number
  dispatcher?: Dispatcher
  /** Called with each failed fetch (for logging). */
  onError?: (error: Error) => void
}

/** Why a key could not be found. */
export class JwksKeyError extends Error {
  constructor (message: string, readonly unavailable: boolean, options?: ErrorOptions) {
    super(message, options)
    this.name = 'JwksKeyError'
  }
}

const MAX_JWKS_BYTES = 512 * 1024
const PUBLIC_JWK_FIELDS = ['kty', 'crv', 'n', 'e', 'x', 'y'] as const

/**
 * A JSON Web Key Set fetched from the one configured URL.
 *
 * - Keys are looked up by `kid` in the last fetched set.
 * - An unknown `kid` refetches the set, at most once per `cooldownMs`, and concurrent
 *   lookups share the one fetch in flight (single-flight): a flood of random kids costs
 *   the key server one request per cooldown.
 * - The set is refetched when older than `maxAgeMs` (so removed keys stop verifying);
 *   when that fetch fails the keys already known keep working.
 */
export class JwksStore {
  readonly #options: JwksStoreOptions
  #keys: JwksKey[] = []
  #loadedAt: number | undefined
  #lastAttemptAt: number | undefined
  #lastError: Error | undefined
  #inflight: Promise<void> | undefined
  #fingerprint = ''
  /** Number of fetches started (exposed for diagnostics and tests). */
  fetches = 0
  /**
   * Bumped whenever a fetch brings a key set different from the one held (a key added,
   * removed or replaced): anything derived from the old set (verified-token caches) must
   * be dropped when it changes.
   */
  version = 0

  constructor (options: JwksStoreOptions) {
    this.#options = options
  }

  /** True once a key set has been loaded. */
  get loaded (): boolean {
    return this.#loadedAt !== undefined
  }

  get lastError (): Error | undefined {
    return this.#lastError
  }

  /** Seconds until the next fetch is allowed (at least 1). */
  retryAfterSeconds (): number {
    const since = this.#lastAttemptAt === undefined ? Infinity : this.#options.now() - this.#lastAttemptAt
    return Math.max(1, Math.ceil((this.#cooldownMs() - since) / 1000))
  }

  /**
   * The cooldown guards the key server against a flood of made-up kids. Until a first set
   * is loaded nothing verifies at all, so the store tries again sooner (every 5 s at most):
   * a key server that comes up after the gateway is picked up in seconds, not half a minute.
   */
  #cooldownMs (): number {
    return this.#loadedAt === undefined ? Math.min(this.#options.cooldownMs, UNLOADED_RETRY_MS) : this.#options.cooldownMs
  }

  #coolingDown (): boolean {
    return this.#lastAttemptAt !== undefined && this.#options.now() - this.#lastAttemptAt < this.#cooldownMs()
  }

  /** Fetches the set now unless a fetch is in flight or the cooldown has not passed. */
  async refresh (): Promise<void> {
    if (this.#inflight !== undefined) return await this.#inflight
    if (this.#coolingDown()) return
    this.#lastAttemptAt = this.#options.now()
    this.fetches++
    this.#inflight = this.#fetch().then((keys) => {
      const fingerprint = keys.map((key) => `${key.kid ?? ''}\u0000${[...key.algorithms].join(',')}\u0000${key.pem}`).sort().join('\u0001')
      if (fingerprint !== this.#fingerprint) {
        this.#fingerprint = fingerprint
        this.version++
      }
      this.#keys = keys
      this.#loadedAt = this.#options.now()
      this.#lastError = undefined
    }, (error: Error) => {
      this.#lastError = error
      this.#options.onError?.(error)
    }).finally(() => {
      this.#inflight = undefined
    })
    return await this.#inflight
  }

  /** True when a key set is loaded and younger than `maxAgeMs` (no refetch is due). */
  isFresh (): boolean {
    return this.#loadedAt !== undefined && this.#options.now() - this.#loadedAt < this.#options.maxAgeMs
  }

  /**
   * The key for `kid` and `alg` when it can be told without waiting (a fresh set that holds
   * it), else `undefined`: then {@link getKey} fetches, refetches or throws as needed.
   */
  keyNow (kid: string | undefined, alg: string): JwksKey | undefined {
    if (!this.isFresh()) return undefined
    const key = this.#find(kid)
    return key !== undefined && key.algorithms.has(alg) ? key : undefined
  }

  /** The key for a token's `kid` and `alg`; throws {@link JwksKeyError}. */
  async getKey (kid: string | undefined, alg: string): Promise<JwksKey> {
    if (this.#loadedAt === undefined || this.#options.now() - this.#loadedAt >= this.#options.maxAgeMs) {
      await this.refresh()
    }
    let key = this.#find(kid)
    if (key === undefined && this.loaded) {
      // Unknown kid: maybe a rotation. Refetch (or join the fetch in flight), within the cooldown.
      await this.refresh()
      key = this.#find(kid)
    }
    if (key === undefined) {
      if (!this.loaded) throw new JwksKeyError('no key set could be loaded', true, { cause: this.#lastError })
      throw new JwksKeyError(kid === undefined ? 'token has no kid and the key set has several keys' : 'unknown kid', false)
    }
    if (!key.algorithms.has(alg)) throw new JwksKeyError(`alg ${alg} does not match key ${kid ?? ''}`, false)
    return key
  }

  #find (kid: string | undefined): JwksKey | undefined {
    const keys = this.#keys
    if (kid === undefined) return keys.length === 1 ? keys[0] : undefined
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as JwksKey
      if (key.kid === kid) return key
    }
    return undefined
  }

  async #fetch (): Promise<JwksKey[]> {
    const { url, timeoutMs, dispatcher } = this.#options
    const response = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      ...(dispatcher === undefined ? {} : { dispatcher })
    })
    if (response.statusCode !== 200) {
      await response.body.dump()
      throw new Error(`JWKS answered ${response.statusCode}`)
    }
    const length = Number(response.headers['content-length'] ?? 0)
    if (length > MAX_JWKS_BYTES) {
      await response.body.dump()
      throw new Error(`JWKS larger than ${MAX_JWKS_BYTES} bytes`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length
      if (size > MAX_JWKS_BYTES) {
        response.body.destroy()
        throw new Error(`JWKS larger than ${MAX_JWKS_BYTES} bytes`)
      }
      chunks.push(chunk as Buffer)
    }
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    if (typeof body !== 'object' || body === null || !Array.isArray((body as { keys?: unknown }).keys)) {
      throw new Error('JWKS has no "keys" list')
    }
    const keys = parseKeys((body as { keys: unknown[] }).keys, this.#options.algorithms)
    if (keys.length === 0) throw new Error('JWKS holds no usable public signing key')
    return keys
  }
}

/** The usable public signing keys of a JWKS `keys` list (symmetric, encryption-only and malformed keys are skipped). */
export function parseKeys (list: readonly unknown[], allowed: readonly JwtAlgorithm[]): JwksKey[] {
  const keys: JwksKey[] = []
  for (const item of list) {
    if (typeof item !== 'object' || item === null) continue
    const jwk = item as Record<string, unknown>
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') continue
    if (jwk.use !== undefined && jwk.use !== 'sig') continue
    if (jwk.kid !== undefined && typeof jwk.kid !== 'string') continue
    const publicJwk: Record<string, unknown> = {}
    for (const field of PUBLIC_JWK_FIELDS) if (jwk[field] !== undefined) publicJwk[field] = jwk[field]
    let pem: string
    let algorithms: JwtAlgorithm[]
    try {
      const key = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' })
      pem = key.export({ type: 'spki', format: 'pem' }).toString()
      algorithms = algorithmsForKey(key)
    } catch {
      continue
    }
    algorithms = algorithms.filter((alg) => allowed.includes(alg) && (jwk.alg === undefined || jwk.alg === alg))
    if (algorithms.length === 0) continue
    keys.push({ kid: jwk.kid as string | undefined, pem, algorithms: new Set(algorithms) })
  }
  return keys
}
