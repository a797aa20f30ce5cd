import { LruCache, sha256, type TollgateIdentity } from '@tollgate/common'
import type { JwksStore } from './jwks.js'

/** A verified token, as remembered. */
export interface CachedToken {
  readonly identity: TollgateIdentity
  /** The token's `exp` and `nbf` in epoch ms (`nbf` -Infinity when absent). */
  readonly expMs: number
  readonly nbfMs: number
  /** Identity headers for this identity, computed on first use. */
  headers: ReadonlyArray<readonly [string, string]> | undefined
}

/**
 * Verified tokens, so that a token seen again costs a hash and a map lookup instead of a
 * signature verification.
 *
 * - Keyed by the SHA-256 of the whole token: the cache holds no token (a memory dump shows
 *   digests and the claims already held per request, nothing that authenticates).
 * - Bounded (LRU, `max` entries).
 * - `exp` and `nbf` are checked against the clock on every hit (with the configured tolerance):
 *   an entry past its `exp` is dropped and the token goes through full verification (which
 *   refuses it as expired).
 * - With a JWKS, every entry is dropped when the key set changes (rotation or removal), and
 *   nothing is served from the cache while a refetch is due (`jwksMaxAge`): the token then goes
 *   through the key lookup, which refetches, so a removed key stops verifying as it did without
 *   the cache. An entry verified against a key set that changed meanwhile is not stored.
 */
export class TokenCache {
  readonly #lru: LruCache<string, CachedToken>
  readonly #now: () => number
  readonly #toleranceMs: number
  readonly #store: JwksStore | undefined
  #version: number

  constructor (max: number, toleranceMs: number, now: () => number, store: JwksStore | undefined) {
    this.#lru = new LruCache(max)
    this.#now = now
    this.#toleranceMs = toleranceMs
    this.#store = store
    this.#version = store?.version ?? 0
  }

  get size (): number {
    return this.#lru.size
  }

  /** The cache key of a token. */
  digest (token: string): string {
    return sha256(token, 'base64')
  }

  /** The key set version a verification starts from (give it back to {@link set}). */
  version (): number {
    return this.#store?.version ?? 0
  }

  get (digest: string): CachedToken | undefined {
    const store = this.#store
    if (store !== undefined) {
      if (store.version !== this.#version) {
        this.#lru.clear()
        this.#version = store.version
        return undefined
      }
      if (!store.isFresh()) return undefined
    }
    const entry = this.#lru.get(digest)
    if (entry === undefined) return undefined
    const at = this.#now()
    if (at > entry.expMs + this.#toleranceMs || at < entry.nbfMs - this.#toleranceMs) {
      this.#lru.delete(digest)
      return undefined
    }
    return entry
  }

  set (digest: string, entry: CachedToken, version: number): void {
    const store = this.#store
    if (store !== undefined) {
      // Verified against a key set that has changed since: do not keep it.
      if (store.version !== version) return
      if (store.version !== this.#version) {
        this.#lru.clear()
        this.#version = store.version
      }
    }
    this.#lru.set(digest, entry)
  }

  clear (): void {
    this.#lru.clear()
  }
}
