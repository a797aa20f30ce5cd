import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { request, type Dispatcher } from 'undici'
import type { ResolvedForward } from './options.js'

/** What forward auth concluded. */
export type ForwardDecision =
  | { kind: 'allow', id: string, roles: readonly string[], permissions: readonly string[] }
  | { kind: 'deny', status: 401 | 403, wwwAuthenticate: string | undefined }
  | { kind: 'unavailable', cause: Error }

interface CacheEntry {
  decision: Extract<ForwardDecision, { kind: 'allow' }>
  expiresAt: number
}

/**
 * Calls the forward-auth service with the configured client headers and the
 * gateway-computed method, URI and client IP. Fails closed: a redirect, a 5xx, a
 * timeout or a connection failure is `unavailable`, never an allow. Allow decisions
 * are cached per credential (SHA-256 of the forwarded headers) for at most `cacheTtl`.
 */
export class ForwardAuth {
  readonly #options: ResolvedForward
  readonly #now: () => number
  readonly #dispatcher: Dispatcher
  readonly #cache = new Map<string, CacheEntry>()
  readonly #inflight = new Map<string, Promise<ForwardDecision>>()
  /** Calls made to the service (diagnostics and tests). */
  calls = 0

  constructor (options: ResolvedForward, now: () => number, dispatcher: Dispatcher) {
    this.#options = options
    this.#now = now
    this.#dispatcher = dispatcher
  }

  /** The client headers that would be forwarded, or `null` when the request carries none of them. */
  credentialHeaders (request: FastifyRequest, skipAuthorization: boolean): Record<string, string> | null {
    const headers: Record<string, string> = {}
    let found = false
    for (const name of this.#options.forwardHeaders) {
      if (skipAuthorization && name === 'authorization') continue
      const value = request.headers[name]
      if (value === undefined) continue
      headers[name] = Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : value
      found = true
    }
    return found ? headers : null
  }

  async check (request: FastifyRequest, credentials: Record<string, string>): Promise<ForwardDecision> {
    // The Authorization header is sent along even when a JWT also claimed it.
    const auth = request.headers.authorization
    if (this.#options.forwardHeaders.includes('authorization') && typeof auth === 'string') credentials = { ...credentials, authorization: auth }
    const key = this.#cacheKey(credentials)
    if (this.#options.cacheTtlMs > 0) {
      const cached = this.#cache.get(key)
      if (cached !== undefined) {
        if (this.#now() < cached.expiresAt) return cached.decision
        this.#cache.delete(key)
      }
    }
    // Only identical questions share a call: the service is told the method, URI and client,
    // and may answer differently for a DELETE or another path with the same credential.
    const question = `${key}\0${request.method}\0${request.url}\0${request.ip}\0${request.protocol}\0${request.host}`
    const pending = this.#inflight.get(question)
    if (pending !== undefined) return await pending
    const call = this.#call(request, credentials).finally(() => { this.#inflight.delete(question) })
    this.#inflight.set(question, call)
    return await call
  }

  #cacheKey (credentials: Record<string, string>): string {
    const hash = createHash('sha256')
    for (const name of this.#options.forwardHeaders) {
      hash.update(name).update('\0').update(credentials[name] ?? '').update('\0')
    }
    return hash.digest('base64')
  }

  async #call (req: FastifyRequest, credentials: Record<string, string>): Promise<ForwardDecision> {
    const { url, timeoutMs, identityHeaders, cacheTtlMs } = this.#options
    this.calls++
    let response: Dispatcher.ResponseData
    try {
      response = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        headers: {
          ...credentials,
          'x-forwarded-method': req.method,
          'x-forwarded-uri': req.url,
          'x-forwarded-for': req.ip,
          'x-forwarded-proto': req.protocol,
          'x-forwarded-host': req.host
        },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (error) {
      return { kind: 'unavailable', cause: error as Error }
    }
    const { statusCode, headers } = response
    // The body is never used: drain it so the connection can be reused.
    await response.body.dump().catch(() => undefined)
    if (statusCode >= 200 && statusCode < 300) {
      const id = single(headers[identityHeaders.id])
      if (id === undefined || id.length === 0) {
        return { kind: 'unavailable', cause: new Error(`forward auth answered ${statusCode} without the ${identityHeaders.id} header`) }
      }
      const decision = {
        kind: 'allow' as const,
        id,
        roles: list(headers, identityHeaders.roles),
        permissions: list(headers, identityHeaders.permissions)
      }
      const cacheControl = String(headers['cache-control'] ?? '')
      if (cacheTtlMs > 0 && this.#options.cacheMax > 0 && !/no-store|no-cache|private/i.test(cacheControl)) {
        const key = this.#cacheKey(credentials)
        if (this.#cache.size >= this.#options.cacheMax) {
          const oldest = this.#cache.keys().next().value
          if (oldest !== undefined) this.#cache.delete(oldest)
        }
        this.#cache.set(key, { decision, expiresAt: this.#now() + cacheTtlMs })
      }
      return decision
    }
    if (statusCode === 401 || statusCode === 403) {
      return { kind: 'deny', status: statusCode, wwwAuthenticate: single(headers['www-authenticate']) }
    }
    if (statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429) {
      return { kind: 'deny', status: 401, wwwAuthenticate: undefined }
    }
    return { kind: 'unavailable', cause: new Error(`forward auth answered ${statusCode}`) }
  }
}

function single (value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined
  return value
}

function list (headers: Record<string, string | string[] | undefined>, name: string | undefined): string[] {
  if (name === undefined) return []
  const value = headers[name]
  if (value === undefined) return []
  const joined = Array.isArray(value) ? value.join(',') : value
  return joined.split(',').map((item) => item.trim()).filter((item) => item.length > 0)
}
