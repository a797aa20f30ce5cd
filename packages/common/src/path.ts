// Percent-encodings that must never appear in a routed path: unreserved characters
// (RFC 3986 says they are equivalent to their decoded form, so an encoded one can only
// serve to dodge a prefix match: `/api/%70osts`), separators (`%2f`, `%5c`) and NUL.
const FORBIDDEN_ENCODED = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2[def]|5f|7e|5c|00)/i
const ENCODED = /%[0-9a-f]{2}/gi

/**
 * Why a request path is refused, or `null` when it is already in normal form.
 *
 * A gateway matches routes by prefix, so a path that normalises to somewhere else
 * (`/api/posts/../admin`, `%2e%2e`, `%2f`, `//`, `\`, `;` matrix parameters) could
 * reach another route's upstream past that route's protections. Rather than guess
 * how each upstream would normalise it, such a path is refused outright.
 */
export function pathProblem (url: string): string | null {
  const queryAt = url.indexOf('?')
  const path = queryAt === -1 ? url : url.slice(0, queryAt)
  if (path.length === 0 || path.charCodeAt(0) !== 47 /* / */) return 'path must start with "/"'
  if (path.includes('#')) return 'path must not contain a fragment'
  if (path.includes('\\')) return 'path must not contain a backslash'
  if (path.includes('//')) return 'path must not contain empty segments'
  if (path.includes(';')) return 'path must not contain ";" parameters'
  // Anything outside printable ASCII must arrive percent-encoded.
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i)
    if (code <= 0x20 || code >= 0x7f) return 'path contains a raw control, space or non-ASCII character'
  }
  if (path.includes('%')) {
    const stripped = path.replace(ENCODED, '')
    if (stripped.includes('%')) return 'path contains an invalid percent-encoding'
    if (FORBIDDEN_ENCODED.test(path)) return 'path contains a percent-encoded separator, dot or unreserved character'
  }
  for (const segment of path.split('/')) {
    if (segment === '.' || segment === '..') return 'path must not contain dot segments'
  }
  return null
}
