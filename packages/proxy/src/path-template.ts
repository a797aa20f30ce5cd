import { InvalidOptionError } from './errors.js'

/**
 * A compiled upstream path: literal text and the names of captured params. Every
 * param is percent-encoded with encodeURIComponent when the path is built, so a
 * captured value can add characters to its own segment but never a `/`, `?`, `#`
 * or `%`-sequence the upstream would decode into one.
 */
export type PathTemplate = ReadonlyArray<string | { readonly param: string }>

const SEGMENT = /^(?:[A-Za-z0-9._~!$&'()+,=@-]+|:[A-Za-z_][A-Za-z0-9_]*)$/

/** Checks a template (`/:id/profile`) and returns the names of its params, in order. */
export function templateParams (value: unknown, path: string, allowEmpty: boolean): string[] {
  if (typeof value !== 'string') throw new InvalidOptionError(`${path}: must be a string`)
  if (value === '' && allowEmpty) return []
  if (!value.startsWith('/')) throw new InvalidOptionError(`${path}: must start with "/"`)
  const params: string[] = []
  for (const segment of value.slice(1).split('/')) {
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..') {
      throw new InvalidOptionError(`${path}: segment ${JSON.stringify(segment)} must be literal path characters or a param like ":id" (no empty or dot segments, "%", "?", "#" or "*")`)
    }
    if (segment.startsWith(':')) {
      const name = segment.slice(1)
      if (params.includes(name)) throw new InvalidOptionError(`${path}: param :${name} appears twice`)
      params.push(name)
    }
  }
  return params
}

/** Compiles `rewrite` (or, without one, `rewritePrefix + path`) against the params `path` captures. */
export function compileRewrite (value: string, path: string, captured: readonly string[]): PathTemplate {
  const params = templateParams(value, path, false)
  for (const name of params) {
    if (!captured.includes(name)) throw new InvalidOptionError(`${path}: :${name} is not captured by the route's path (captured: ${captured.length === 0 ? 'none' : captured.map((p) => `:${p}`).join(', ')})`)
  }
  const parts: Array<string | { param: string }> = []
  let literal = ''
  for (const segment of value.slice(1).split('/')) {
    literal += '/'
    if (segment.startsWith(':')) {
      parts.push(literal, Object.freeze({ param: segment.slice(1) }))
      literal = ''
    } else {
      literal += segment
    }
  }
  if (literal !== '') parts.push(literal)
  return Object.freeze(parts.filter((part) => part !== ''))
}

/**
 * The upstream path of a request: the template with each param percent-encoded, then
 * the query string exactly as sent. `null` when a param is empty or a dot segment
 * (`.`, `..`): such a request is refused rather than built into a path an upstream
 * would normalise elsewhere.
 */
export function buildPath (template: PathTemplate, params: Record<string, string | undefined>, url: string): string | null {
  let out = ''
  for (const part of template) {
    if (typeof part === 'string') {
      out += part
      continue
    }
    const value = params[part.param]
    if (value === undefined || value === '' || value === '.' || value === '..') return null
    out += encodeURIComponent(value)
  }
  const queryAt = url.indexOf('?')
  return queryAt === -1 ? out : out + url.slice(queryAt)
}
