import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  bodyLength: number
  bodySha256: string
}

export interface EchoUpstream {
  url: string
  port: number
  seen: SeenRequest[]
  server: Server
  close: () => Promise<void>
}

/**
 * A real upstream on 127.0.0.1 that records every request it receives and answers
 * with a JSON echo of it. `delayMs` holds the answer back (for shutdown tests).
 */
export async function echoUpstream (options: { delayMs?: number, name?: string } = {}): Promise<EchoUpstream> {
  const seen: SeenRequest[] = []
  const server = createServer((request, response) => {
    const hash = createHash('sha256')
    let length = 0
    request.on('data', (chunk: Buffer) => { hash.update(chunk); length += chunk.length })
    request.on('end', () => {
      const record: SeenRequest = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        rawHeaders: request.rawHeaders,
        bodyLength: length,
        bodySha256: hash.digest('hex')
      }
      seen.push(record)
      const answer = (): void => {
        const body = JSON.stringify({ ...record, rawHeaders: undefined, served: options.name ?? 'echo' })
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
      }
      if (options.delayMs === undefined) answer()
      else setTimeout(answer, options.delayMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound once, then released). */
export async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

/** Polls `condition` every 10 ms until it holds; fails after `timeoutMs`. */
export async function waitFor (condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
