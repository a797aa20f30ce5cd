import { createHash, createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { createSigner } from 'fast-jwt'
import type { Test } from 'tap'
import { tollgateRuntime, type TollgateEventMap } from '@tollgate/common'
import tollgateAuth, { type AuthOptions } from '../../src/index.js'

export const ISSUER = 'example-auth'
export const AUDIENCE = 'example-api'
export const SECRET = 'a-test-secret-that-is-long-enough-0123456789'

export interface KeyPair {
  kid: string
  alg: string
  publicKey: KeyObject
  privateKey: KeyObject
  publicPem: string
  privatePem: string
  jwk: Record<string, unknown>
}

export function makeKey (type: 'rsa' | 'ec' | 'ed25519', kid: string): KeyPair {
  const pair = type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519')
  const alg = type === 'rsa' ? 'RS256' : type === 'ec' ? 'ES256' : 'EdDSA'
  return {
    kid,
    alg,
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    jwk: { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' }
  }
}

/** Claims of a valid token for `sub`, expiring in an hour from `nowMs`. */
export function claims (sub: string, extra: Record<string, unknown> = {}, nowMs = Date.now()): Record<string, unknown> {
  const now = Math.floor(nowMs / 1000)
  return { sub, iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 3600, roles: ['user'], ...extra }
}

/** Signs with a key pair (its kid and alg unless overridden). */
export function signWith (key: KeyPair, payload: Record<string, unknown>, header: Record<string, unknown> = {}, alg = key.alg, kid: string | undefined = key.kid): string {
  const signer = createSigner({ key: key.privatePem, algorithm: alg as 'RS256', ...(kid === undefined ? {} : { kid }), noTimestamp: true, header: header as never })
  return signer(payload)
}

export function signHmac (secret: string, payload: Record<string, unknown>, alg = 'HS256', header: Record<string, unknown> = {}): string {
  return createSigner({ key: secret, algorithm: alg as 'HS256', noTimestamp: true, header: header as never })(payload)
}

/** An unsigned token with the given header alg (`none`, `None`, ...). */
export function unsigned (payload: Record<string, unknown>, alg = 'none'): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg, typ: 'JWT' })}.${part(payload)}.`
}

export function sha256 (value: string): string {
  return createHash('sha256').update(value).digest('hex')
}

export const PARTNER_KEY = 'example-partner-key'

/** A controllable clock. */
export function clock (start = Date.now()): { now: () => number, advance: (ms: number) => void, set: (ms: number) => void } {
  let current = start
  return { now: () => current, advance: (ms) => { current += ms }, set: (ms) => { current = ms } }
}

export interface EchoApp {
  app: FastifyInstance
  failures: Array<TollgateEventMap['authFailure']>
}

/** Echoes what an upstream would receive: the headers and the identity. */
export function echo (request: FastifyRequest, _reply: FastifyReply): unknown {
  return { headers: request.headers, identity: request.tollgateIdentity, url: request.url }
}

/**
 * A Fastify app with the auth plugin and a few routes echoing what an upstream would get:
 * /protected (default), /public (auth false), /admin (roles admin + permission posts:moderate),
 * /strip (stripCredentials), /jwt-only, /key-only, /forward (jwt + forward).
 */
export async function buildApp (t: Test, options: AuthOptions, extraRoutes?: (app: FastifyInstance) => void): Promise<EchoApp> {
  const app = Fastify()
  t.teardown(() => app.close())
  const failures: Array<TollgateEventMap['authFailure']> = []
  tollgateRuntime(app).events.on('authFailure', (event) => { failures.push(event) })
  await app.register(tollgateAuth, options)
  app.get('/protected', echo)
  app.get('/public', { config: { auth: false } }, echo)
  app.get('/admin', { config: { auth: { roles: ['admin'], permissions: ['posts:moderate'] } } }, echo)
  app.get('/strip', { config: { stripCredentials: true } }, echo)
  if (options.jwt !== undefined) app.get('/jwt-only', { config: { auth: { methods: ['jwt'] } } }, echo)
  if (options.apiKeys !== undefined) app.get('/key-only', { config: { auth: { methods: ['apiKey'] } } }, echo)
  if (options.forward !== undefined) {
    app.get('/forward', { config: { auth: { methods: options.jwt === undefined ? ['forward'] : ['jwt', 'forward'] } } }, echo)
  }
  extraRoutes?.(app)
  await app.ready()
  return { app, failures }
}

/** A JWKS server whose key list can be replaced, counting its hits. */
export async function jwksServer (t: Test, initial: KeyPair[]): Promise<{ url: string, hits: () => number, setKeys: (keys: KeyPair[]) => void, setStatus: (status: number) => void, close: () => Promise<void> }> {
  let keys = initial
  let hits = 0
  let status = 200
  const server = Fastify()
  server.get('/.well-known/jwks.json', async (_request, reply) => {
    hits++
    if (status !== 200) return await reply.code(status).send({ error: 'down' })
    return { keys: keys.map((key) => key.jwk) }
  })
  await server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => server.close())
  const address = server.server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${address.port}/.well-known/jwks.json`,
    hits: () => hits,
    setKeys: (next) => { keys = next },
    setStatus: (next) => { status = next },
    close: async () => { await server.close() }
  }
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/** Sends a raw HTTP/1.1 request (exact header lines: duplicates, odd names) and returns the status and body. */
export async function rawRequest (port: number, head: string): Promise<{ status: number, body: string }> {
  const { connect } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.setTimeout(5000, () => { socket.destroy(new Error('raw request timed out')) })
    socket.on('data', (chunk) => { data += chunk.toString('latin1') })
    socket.on('error', reject)
    socket.on('close', () => {
      const [header = '', ...rest] = data.split('\r\n\r\n')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(header)?.[1] ?? 0)
      let body = rest.join('\r\n\r\n')
      if (/transfer-encoding: chunked/i.test(header)) {
        body = body.replace(/(^|\r\n)[0-9a-f]+\r\n/gi, '').replace(/\r\n$/, '')
      }
      resolve({ status, body })
    })
    socket.write(`${head.replace(/\n/g, '\r\n')}\r\n${/^connection:/im.test(head) ? '' : 'Connection: close\r\n'}\r\n`)
  })
}

/** Listens on a free port and returns it. */
export async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

/** Base64url-encodes JSON or raw text, to hand-craft tokens. */
export function b64 (value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

/** An HS-signed token with an arbitrary (even non-object) payload segment. */
export function hmacToken (secret: string | Buffer, header: Record<string, unknown>, payloadSegment: string, hash = 'sha256'): string {
  const input = `${b64(header)}.${payloadSegment}`
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`
}
