import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'

/**
 * Bodies declared this small (by `content-length`) are read whole before the request is
 * sent upstream, and sent with its head in one write: for the usual small JSON body this
 * saves the stream machinery, and the upstream never waits on a half-sent request. Larger
 * or chunked bodies are streamed, so memory stays bounded by this per request.
 */
export const SMALL_BODY = 64 * 1024

/** Whether the request declares a body of 1 to SMALL_BODY bytes, and no chunked encoding. */
export function hasSmallBody (request: FastifyRequest): boolean {
  const headers = request.headers
  if (headers['transfer-encoding'] !== undefined) return false
  const length = headers['content-length']
  if (length === undefined || length === '0') return false
  const bytes = Number(length)
  return bytes > 0 && bytes <= SMALL_BODY
}

/** Where a request's body is read from: the parser's stream, else the raw request. */
export function bodySource (request: FastifyRequest): Readable {
  return (request.body instanceof Readable ? request.body : request.raw) as Readable
}

/**
 * Reads a request body of at most `limit` bytes; `null` when it went over (the caller
 * answers 413). Rejects when the stream fails or closes before its end (the client left).
 */
export function readBody (source: Readable, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let length = 0
    const cleanup = (): void => {
      source.removeListener('data', onData)
      source.removeListener('end', onEnd)
      source.removeListener('error', onError)
      source.removeListener('close', onClose)
    }
    const onData = (chunk: Buffer): void => {
      length += chunk.length
      if (length > limit) {
        cleanup()
        source.pause()
        resolve(null)
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => { cleanup(); resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)) }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    const onClose = (): void => { cleanup(); reject(new Error('the request body ended early: the client closed the connection')) }
    source.on('data', onData)
    source.once('end', onEnd)
    source.once('error', onError)
    source.once('close', onClose)
  })
}
