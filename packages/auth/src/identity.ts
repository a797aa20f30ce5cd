import type { TollgateIdentity } from '@tollgate/common'

/**
 * A claim's value by name: the exact key first (`https://example.com/roles` is a valid
 * claim name), else a dotted path into nested objects (`realm_access.roles`).
 */
export function claimValue (claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name]
  if (!name.includes('.')) return undefined
  let value: unknown = claims
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/** A roles or permissions claim as names: a list keeps its strings, a single string is one name, anything else is none. */
export function nameList (value: unknown): string[] {
  if (typeof value === 'string') return value.length > 0 ? [value] : []
  if (!Array.isArray(value)) return []
  return value.filter((item): item is string => typeof item === 'string' && item.length > 0)
}

// Header values may hold tab, visible ASCII and obs-text; CR, LF and NUL would split or end a header.
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/

/** Thrown when a verified claim cannot be put in a header without changing its meaning. */
export class UnsafeIdentityValue extends Error {}

function scalar (value: unknown, header: string): string | undefined {
  if (typeof value === 'string') {
    if (INVALID_HEADER_VALUE.test(value)) throw new UnsafeIdentityValue(`claim for ${header} contains a character not allowed in a header (CR, LF, NUL or a control)`)
    // The upstream's HTTP parser strips it (and list readers trim each name): " admin" would
    // arrive as the "admin" this gateway just decided the token does not have.
    if (value.trim() !== value) throw new UnsafeIdentityValue(`claim for ${header} begins or ends with whitespace`)
    return value
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}

/**
 * The value of one identity header, or `undefined` to leave it unset. A list becomes one
 * comma-separated value; a list member containing a comma is refused (the upstream would
 * split it into two names), and so is a value with leading or trailing whitespace (the
 * upstream would read it trimmed). Throws {@link UnsafeIdentityValue}.
 */
export function identityHeaderValue (value: unknown, header: string): string | undefined {
  if (Array.isArray(value)) {
    const parts: string[] = []
    for (const item of value) {
      const part = scalar(item, header)
      if (part === undefined) continue
      if (part.includes(',')) throw new UnsafeIdentityValue(`a list member for ${header} contains a comma`)
      if (part.length > 0) parts.push(part)
    }
    return parts.join(',')
  }
  return scalar(value, header)
}

/**
 * What each identity header's claim means for this identity: the JWT claims, with `sub`,
 * the roles claim and the permissions claim always taken from the verified identity.
 */
export function identityClaims (identity: TollgateIdentity, rolesClaim: string, permissionsClaim: string): Record<string, unknown> {
  return {
    ...identity.claims,
    sub: identity.id,
    [rolesClaim]: identity.roles,
    [permissionsClaim]: identity.permissions
  }
}

/** The identity headers to set: [lower-case name, value]. Throws {@link UnsafeIdentityValue}. */
export function identityHeaders (identity: TollgateIdentity, mapping: ReadonlyArray<readonly [string, string]>, rolesClaim: string, permissionsClaim: string): Array<[string, string]> {
  if (mapping.length === 0) return []
  const claims = identityClaims(identity, rolesClaim, permissionsClaim)
  const result: Array<[string, string]> = []
  for (const [header, claim] of mapping) {
    const value = identityHeaderValue(claimValue(claims, claim), header)
    if (value !== undefined) result.push([header, value])
  }
  return result
}
