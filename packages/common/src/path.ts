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
  // One pass over the path (the query is not part of it) noting each kind of problem, with
  // no string or array allocated: this runs on every request. The checks are reported in
  // a fixed order whatever their position, so one path always gets the same message.
  const queryAt = url.indexOf('?')
  const end = queryAt === -1 ? url.length : queryAt
  if (end === 0 || url.charCodeAt(0) !== 47 /* / */) return 'path must start with "/"'
  let fragment = false
  let backslash = false
  let emptySegment = false
  let parameter = false
  let raw = false
  let percent = false
  let dotSegment = false
  let segmentStart = 1
  for (let i = 1; i <= end; i++) {
    const code = i === end ? 47 : url.charCodeAt(i)
    if (code === 47 /* / */) {
      const length = i - segmentStart
      if (i < end && length === 0) emptySegment = true
      else if ((length === 1 || length === 2) && url.charCodeAt(segmentStart) === 46 /* . */ && (length === 1 || url.charCodeAt(segmentStart + 1) === 46)) dotSegment = true
      segmentStart = i + 1
    } else if (code === 35 /* # */) fragment = true
    else if (code === 92 /* \ */) backslash = true
    else if (code === 59 /* ; */) parameter = true
    else if (code === 37 /* % */) percent = true
    else if (code <= 0x20 || code >= 0x7f) raw = true
  }
  if (fragment) return 'path must not contain a fragment'
  if (backslash) return 'path must not contain a backslash'
  if (emptySegment) return 'path must not contain empty segments'
  if (parameter) return 'path must not contain ";" parameters'
  // Anything outside printable ASCII must arrive percent-encoded.
  if (raw) return 'path contains a raw control, space or non-ASCII character'
  if (percent) {
    const path = url.slice(0, end)
    const stripped = path.replace(ENCODED, '')
    if (stripped.includes('%')) return 'path contains an invalid percent-encoding'
    if (FORBIDDEN_ENCODED.test(path)) return 'path contains a percent-encoded separator, dot or unreserved character'
  }
  if (dotSegment) return 'path must not contain dot segments'
  return null
}

// Percent-encoded unreserved characters (RFC 3986 2.3: letters, digits, `-`, `.`, `_`, `~`).
const ENCODED_UNRESERVED = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2[de]|5f|7e)/gi
const MALFORMED_ENCODING = /%(?![0-9a-f]{2})/i

function decodeOne (encoded: string): string {
  return String.fromCharCode(Number.parseInt(encoded.slice(1), 16))
}

/**
 * The URL with percent-encoded unreserved characters in its path decoded (`/%7Euser` is
 * `/~user`, `%41` is `A`), which RFC 3986 6.2.2.2 says changes nothing, as Kong and Envoy
 * normalise them; the query is left as sent. Anything else encoded stays encoded. Run it
 * before routing and before {@link pathProblem}: a `%2e%2e` decoded here is then refused
 * as the dot segment it is.
 */
export function decodeUnreserved (url: string): string {
  const percentAt = url.indexOf('%')
  if (percentAt === -1) return url
  const queryAt = url.indexOf('?')
  if (queryAt !== -1 && queryAt < percentAt) return url
  const end = queryAt === -1 ? url.length : queryAt
  const path = url.slice(0, end)
  // A malformed encoding anywhere is left for the router to refuse: decoding around it could
  // make a new, valid one (`%2%61` would become `%2a`).
  if (MALFORMED_ENCODING.test(path)) return url
  const decoded = path.replace(ENCODED_UNRESERVED, decodeOne)
  return decoded === path ? url : decoded + url.slice(end)
}
