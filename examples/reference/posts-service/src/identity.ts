import type { FastifyRequest } from 'fastify'

/** Who the gateway says is calling. The service trusts these headers: only the gateway may reach it. */
export interface Caller {
  id: string
  roles: ReadonlySet<string>
  /** Display name for new posts: `x-user-email` when the gateway sends it, else the id. */
  name: string
}

function single (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value
}

const SANE = /^[\x21-\x7e]{1,200}$/

/** Null when there is no (or no sane) `x-user-id`. Duplicated headers count as absent. */
export function callerOf (request: FastifyRequest): Caller | null {
  const id = single(request.headers['x-user-id'])?.trim()
  if (id === undefined || !SANE.test(id)) return null
  const roles = new Set((single(request.headers['x-user-roles']) ?? '').split(',').map((role) => role.trim()).filter((role) => role !== ''))
  const email = single(request.headers['x-user-email'])?.trim()
  return { id, roles, name: email !== undefined && SANE.test(email) ? email : id }
}

export function httpError (statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode })
}
