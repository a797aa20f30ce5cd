/**
 * The form used to compare header names: lower case, with `_` and `.` read as `-`.
 * Proxies and frameworks in front of an upstream disagree on whether `x_user_id`
 * is `x-user-id` (CGI, nginx with underscores_in_headers, some WSGI servers), so
 * a header that must not be spoofed has to be removed under every alias.
 */
export function headerAlias (name: string): string {
  return name.toLowerCase().replace(/[_.]/g, '-')
}

/** Hop-by-hop headers (RFC 9110 section 7.6.1) and their de-facto companions: never forwarded. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Connection-specific by RFC 9113 3.2.1 (the h2c upgrade's settings), never forwarded.
  'http2-settings'
])

/** Names listed in a `Connection` header value (each of them is hop-by-hop for this message). */
export function connectionTokens (value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  if (typeof value === 'string' && !value.includes(',')) {
    // One token (`keep-alive`, `close`): nearly every message, on both sides of the proxy.
    const token = value.trim().toLowerCase()
    return token.length > 0 ? [token] : []
  }
  const joined = Array.isArray(value) ? value.join(',') : value
  return joined.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token.length > 0)
}

/**
 * Header names in alias form (see {@link headerAlias}), matched against names as they
 * arrive, on every request. Their lengths rule most names out before any alias is
 * computed: an alias keeps the length of an ASCII name, and the alias of a name it would
 * lengthen (a non-ASCII one) is not an ASCII header name, so the shortcut is exact. A name
 * already in alias form (every name of `IncomingMessage.headers` but the odd ones) is
 * looked up as it is, without allocating.
 */
export class HeaderAliases {
  readonly size: number
  readonly #names: ReadonlySet<string>
  readonly #lengths: ReadonlySet<number>
  constructor (aliases: Iterable<string>) {
    this.#names = new Set(aliases)
    this.#lengths = new Set([...this.#names].map((name) => name.length))
    this.size = this.#names.size
  }

  /** Whether `name`, read as an alias, is one of these. */
  has (name: string): boolean {
    if (!this.#lengths.has(name.length)) return false
    for (let i = 0; i < name.length; i++) {
      const code = name.charCodeAt(i)
      if ((code >= 65 && code <= 90) || code === 95 || code === 46 || code > 127) return this.#names.has(headerAlias(name))
    }
    return this.#names.has(name)
  }

  /** Removes every header of a Node.js headers object that is one of these, in place; returns how many. */
  removeFrom (headers: Record<string, unknown>): number {
    let removed = 0
    for (const name in headers) {
      if (this.has(name)) {
        delete headers[name]
        removed++
      }
    }
    return removed
  }

  /**
   * `headers` without the headers that are one of these: the same object when none is,
   * else a copy of the others in their order. Where the object can be replaced (Node's
   * `IncomingMessage.headers` can), this is cheaper than {@link removeFrom}: deleting a
   * property V8 did not add last turns the object into a dictionary (~3k instructions,
   * and every later lookup and `for...in` on it slower), where a copy of a request's
   * dozen headers stays a fast object.
   */
  without<T extends Record<string, unknown>> (headers: T): T {
    let found = false
    for (const name in headers) {
      if (this.has(name)) {
        found = true
        break
      }
    }
    if (!found) return headers
    const kept: Record<string, unknown> = {}
    for (const name in headers) {
      if (!this.has(name)) kept[name] = headers[name]
    }
    return kept as T
  }

  /** The same as {@link removeFrom} for `IncomingMessage.rawHeaders` (name, value, name, value...). */
  removeFromRaw (rawHeaders: string[]): number {
    let removed = 0
    for (let i = rawHeaders.length - 2; i >= 0; i -= 2) {
      if (this.has(rawHeaders[i] as string)) {
        rawHeaders.splice(i, 2)
        removed++
      }
    }
    return removed
  }
}

/**
 * Removes every header whose alias is in `aliases` (see {@link headerAlias}) from a
 * Node.js headers object, in place. Returns how many were removed. On a hot path, build
 * a {@link HeaderAliases} once instead.
 */
export function removeAliasedHeaders (headers: Record<string, unknown>, aliases: ReadonlySet<string>): number {
  return new HeaderAliases(aliases).removeFrom(headers)
}
