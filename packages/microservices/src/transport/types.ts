import type { ReadinessResult } from '@tollgate/common'
import type { CallResult } from '../protocol.js'

/** The outcome of a request: the reply values and the target (credential-free label) that answered. */
export interface SendResult extends CallResult {
  target: string
}

/** One upstream's client. Each transport speaks the NestJS protocol its own way. */
export interface TransportClient {
  /**
   * Sends `{ pattern, data, id }` and waits for every reply packet (until `isDisposed`).
   * Rejects with the errors of `../errors.ts`, each carrying the target label as `target`.
   */
  send: (route: string, data: unknown, timeoutMs: number) => Promise<SendResult>
  /** Sends `{ pattern, data }`; resolves (with the target label) once the transport took it. */
  emit: (route: string, data: unknown, timeoutMs: number) => Promise<string>
  readiness: () => Promise<ReadinessResult>
  /** Starts connecting in the background (the app is ready). */
  start: () => void
  close: () => Promise<void>
}

/** Attaches the target label to an error, for the `upstreamResponse` event and logs. */
export function withTarget<E extends Error> (error: E, target: string): E {
  Object.defineProperty(error, 'target', { value: target, enumerable: false, configurable: true })
  return error
}

export function targetOf (error: unknown): string | undefined {
  const target = (error as { target?: unknown } | null)?.target
  return typeof target === 'string' ? target : undefined
}

/** Awaits a call's replies; an error without a target (a reply's `err`) gets `target`. */
export async function repliesFrom<T> (promise: Promise<T>, target: string): Promise<T> {
  try {
    return await promise
  } catch (error) {
    if (error instanceof Error && targetOf(error) === undefined) withTarget(error, target)
    throw error
  }
}
