import { randomUUID } from 'node:crypto'

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** True when a client-sent `x-request-id` may be kept: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. */
export function isSaneRequestId (value: unknown): value is string {
  return typeof value === 'string' && SANE_REQUEST_ID.test(value)
}

/** The request id to use: the client's when it is sane, else a fresh UUID. */
export function requestIdFor (headerValue: unknown): string {
  return isSaneRequestId(headerValue) ? headerValue : randomUUID()
}
