import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import helmet from 'helmet'

/**
 * The headers helmet's defaults set, computed once by running helmet against a response
 * that only records them. With its default options (no CSP nonces) they are the same on
 * every response, so applying the list costs a few `setHeader` calls, where running
 * @fastify/helmet's two hooks per request rebuilt the Content-Security-Policy string and
 * allocated reply decorators each time (about 3% of a proxied request in the profile).
 */
export function helmetDefaults (): ReadonlyArray<readonly [string, string]> {
  const recorded = new Map<string, string>()
  const recorder = {
    setHeader (name: string, value: unknown) { recorded.set(name.toLowerCase(), String(value)) },
    removeHeader (name: string) { recorded.delete(name.toLowerCase()) },
    getHeader (name: string) { return recorded.get(name.toLowerCase()) }
  }
  let finished = false
  helmet()({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error !== undefined && error !== null) throw error as Error
    finished = true
  })
  // helmet's middleware chain is synchronous; anything else would mean this list is wrong.
  if (!finished) throw new Error('helmet did not finish synchronously')
  return Object.freeze([...recorded].map(([name, value]) => Object.freeze([name, value] as const)))
}

/** Puts `headers` on the reply, in order (a name already there is replaced). */
export function setHeaders (reply: FastifyReply, headers: ReadonlyArray<readonly [string, string]>): void {
  for (let i = 0; i < headers.length; i++) reply.header(headers[i]![0], headers[i]![1])
}
