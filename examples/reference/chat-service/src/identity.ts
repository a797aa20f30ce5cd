import type { IncomingHttpHeaders } from 'node:http'

const SANE = /^[\x21-\x7e]{1,200}$/

/**
 * The user id the gateway put in `x-user-id`, or null when absent, duplicated or insane.
 * The service trusts it: it must be reachable only through the gateway.
 */
export function userIdFrom (headers: IncomingHttpHeaders): string | null {
  const value = headers['x-user-id']
  if (typeof value !== 'string') return null
  const id = value.trim()
  return SANE.test(id) ? id : null
}

export function httpError (statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode })
}
