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
  'upgrade'
])

/** Names listed in a `Connection` header value (each of them is hop-by-hop for this message). */
export function connectionTokens (value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  const joined = Array.isArray(value) ? value.join(',') : value
  return joined.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token.length > 0)
}

/**
 * Removes every header whose alias is in `aliases` (see {@link headerAlias}) from a
 * Node.js headers object, in place. Returns how many were removed.
 */
export function removeAliasedHeaders (headers: Record<string, unknown>, aliases: ReadonlySet<string>): number {
  let removed = 0
  for (const name of Object.keys(headers)) {
    if (aliases.has(headerAlias(name))) {
      delete headers[name]
      removed++
    }
  }
  return removed
}
