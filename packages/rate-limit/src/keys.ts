import { routeLabel, sha256, type TollgateIdentity } from '@tollgate/common'
import type { FastifyRequest } from 'fastify'
import { ipBucket } from './ip.js'
import type { Algorithm, ResolvedRule } from './options.js'

const TAGS: Record<Algorithm, string> = { 'fixed-window': 'fw', 'sliding-window': 'sw', 'token-bucket': 'tb' }

/**
 * A fixed-size name for a client-chosen value (an API key, a header, a user id): hostile
 * input can make neither huge keys nor keys that spell anything, and secrets never reach the
 * store in clear. 132 bits of SHA-256: a collision (one client spending another's quota)
 * cannot be found by trying.
 */
export function digest (value: string): string {
  return sha256(value, 'base64url').slice(0, 22)
}

/**
 * `u:<digest>` per verified identity object. @tollgate/auth hands out one frozen identity per
 * cached token, so a client sending the same token again costs a WeakMap lookup instead of a
 * SHA-256; entries go with their identity (nothing to bound or expire here).
 */
const userKeys = new WeakMap<TollgateIdentity, string>()

function userKey (identity: TollgateIdentity, id: string): string {
  let key = userKeys.get(identity)
  if (key === undefined) {
    key = `u:${digest(id)}`
    // Only a frozen identity cannot change its id after the key was made.
    if (Object.isFrozen(identity)) userKeys.set(identity, key)
  }
  return key
}

/** `<algorithm>:<window ms>|` : part of every bucket name of a rule, computed once per route. */
export function rulePrefix (rule: ResolvedRule): string {
  return `${TAGS[rule.algorithm]}:${rule.windowMs}|`
}

function headerValue (request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  if (typeof value === 'string') return value.length > 0 ? value : undefined
  if (Array.isArray(value) && value.length > 0) return value.join(',')
  return undefined
}

/**
 * Who the request counts for, within its route: `i:<ip>`, `u:<digest of the user id>`,
 * `k:<digest of the verified key's id, or without @tollgate/auth of the API key>` or `h:<header>:<digest of its value>`; the IP when the chosen
 * value is missing (an anonymous request, no key, no header).
 */
export function clientKey (request: FastifyRequest, rule: ResolvedRule, ipv6Subnet: number): string {
  switch (rule.by) {
    case 'user': {
      // `tollgateIdentity` is only set by @tollgate/auth after verification; without auth it
      // is undefined, and a client can never set it.
      const identity = request.tollgateIdentity
      const id = identity?.id
      if (typeof id === 'string' && id.length > 0) return userKey(identity as TollgateIdentity, id)
      break
    }
    case 'apiKey': {
      const identity = request.tollgateIdentity
      // With @tollgate/auth (which sets `tollgateIdentity`, null until verified) only a
      // verified key counts: a header as sent would let a client rotate junk keys for a
      // fresh bucket each. Without it, the app's own auth vouches for the header.
      if (identity !== undefined) {
        if (identity !== null && identity.method === 'apiKey') return `k:${digest(identity.id)}`
        break
      }
      const value = headerValue(request, rule.header!)
      if (value !== undefined) return `k:${digest(value)}`
      break
    }
    case 'header': {
      const value = headerValue(request, rule.header!)
      if (value !== undefined) return `h:${rule.header!}:${digest(value)}`
      break
    }
  }
  return `i:${ipBucket(request.ip, ipv6Subnet)}`
}

/**
 * The bucket of a request: the rule, the route's label (the manifest prefix set by the
 * proxy, else the Fastify route pattern: never the raw path, so `/api/auth/`, `/api/auth/x`
 * and any other spelling that reaches the route share one bucket) and the client. `label`
 * is `routeLabel(request)`, which a per-route caller may compute once (it is fixed per route).
 */
export function bucketKey (request: FastifyRequest, rule: ResolvedRule, prefix: string, ipv6Subnet: number, label: string = routeLabel(request)): string {
  return `${prefix}${label}|${clientKey(request, rule, ipv6Subnet)}`
}
