import { createHash, randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AuthConfig } from './config.js'
import type { SigningKey } from './keys.js'
import { DUMMY_HASH_PROMISE, hashPassword, verifyPassword } from './password.js'
import type { Store, User } from './store/index.js'
import { newRefreshToken, signAccessToken, verifyAccessToken, type AccessClaims, type TokenSettings } from './tokens.js'

export interface AuthAppOptions {
  config: Pick<AuthConfig, 'accessTokenTtl' | 'refreshTokenTtl' | 'issuer' | 'audience' | 'adminEmails' | 'adminPassword'>
  store: Store
  key: SigningKey
  /** Clock in milliseconds; injected by tests. */
  now?: () => number
  logger?: FastifyServerOptions['logger']
}

interface Credentials { email: string, password: string }
interface RefreshBody { refreshToken: string }

const credentialsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['email', 'password'],
  properties: {
    email: { type: 'string', format: 'email', maxLength: 254 },
    // scrypt cost grows with input: cap it.
    password: { type: 'string', minLength: 8, maxLength: 128 }
  }
} as const

const refreshSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['refreshToken'],
  properties: { refreshToken: { type: 'string', minLength: 1, maxLength: 256 } }
} as const

const tokenResponse = {
  type: 'object',
  properties: {
    accessToken: { type: 'string' },
    refreshToken: { type: 'string' },
    tokenType: { type: 'string' },
    expiresIn: { type: 'integer' }
  }
} as const

const errorResponse = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' } }
} as const

function sha256 (value: string): string {
  return createHash('sha256').update(value).digest('hex')
}

function httpError (statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode })
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/

/** The auth service as a Fastify app (not listening). The store must be initialised; the app closes it. */
export async function buildAuthApp (options: AuthAppOptions): Promise<FastifyInstance> {
  const { config, store, key } = options
  const now = options.now ?? Date.now
  const settings: TokenSettings = { key, issuer: config.issuer, audience: config.audience, ttl: config.accessTokenTtl }
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 16 * 1024,
    // Bodies are validated as sent: a JSON number is not a password, and a field the schema
    // does not name (`"role": "admin"`) is refused with a 400, not silently dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } }
  })
  app.addHook('onClose', async () => { await store.close() })

  // The admin accounts exist before the service answers anyone: their addresses can then
  // only be registered as duplicates (409). The role is the stored account's, never the
  // address's, so an account someone registered before its address was listed stays a user.
  app.addHook('onReady', async () => {
    if (config.adminPassword === undefined) return
    for (const email of config.adminEmails) {
      const admin: User = { id: randomUUID(), email, passwordHash: await hashPassword(config.adminPassword), roles: ['user', 'admin'], createdAt: now() }
      if (await store.createUser(admin)) {
        app.log.info({ email }, 'admin account created')
        continue
      }
      const existing = await store.userByEmail(email)
      if (existing !== null && !existing.roles.includes('admin')) {
        app.log.warn({ email }, 'an account with this ADMIN_EMAILS address already exists without the admin role (anyone may have registered it): not made an admin')
      }
    }
  })

  function grantsFor (user: User): { roles: string[], permissions: string[] } {
    const permissions = user.roles.includes('admin') ? ['posts:moderate'] : []
    return { roles: [...user.roles], permissions }
  }

  async function issueTokens (user: User, sessionId: string): Promise<{ accessToken: string, refreshToken: string, tokenType: 'Bearer', expiresIn: number, hash: string }> {
    const { token } = signAccessToken(settings, { sub: user.id, email: user.email, ...grantsFor(user), sid: sessionId }, now())
    const refreshToken = newRefreshToken()
    return { accessToken: token, refreshToken, tokenType: 'Bearer', expiresIn: config.accessTokenTtl, hash: sha256(refreshToken) }
  }

  app.post<{ Body: Credentials }>('/api/auth/register', {
    schema: { body: credentialsSchema, response: { 201: { type: 'object', properties: { id: { type: 'string' }, email: { type: 'string' } } }, 409: errorResponse } }
  }, async (request, reply) => {
    const email = request.body.email.trim().toLowerCase()
    const user: User = { id: randomUUID(), email, passwordHash: await hashPassword(request.body.password), roles: ['user'], createdAt: now() }
    if (!await store.createUser(user)) throw httpError(409, 'an account with this email already exists')
    request.log.info({ userId: user.id }, 'user registered')
    return await reply.code(201).send({ id: user.id, email })
  })

  app.post<{ Body: Credentials }>('/api/auth/login', {
    schema: { body: credentialsSchema, response: { 200: tokenResponse, 401: errorResponse } }
  }, async (request) => {
    const user = await store.userByEmail(request.body.email.trim().toLowerCase())
    // Unknown e-mails cost one scrypt too, so response time does not reveal which accounts exist.
    const matches = await verifyPassword(request.body.password, user?.passwordHash ?? await DUMMY_HASH_PROMISE)
    if (user === null || !matches) throw httpError(401, 'invalid email or password')
    const sessionId = randomUUID()
    const issued = await issueTokens(user, sessionId)
    const at = now()
    await store.createSession(
      { id: sessionId, userId: user.id, createdAt: at, revokedAt: null },
      { hash: issued.hash, sessionId, userId: user.id, createdAt: at, expiresAt: at + config.refreshTokenTtl * 1000, usedAt: null }
    )
    request.log.info({ userId: user.id, sessionId }, 'login')
    return issued
  })

  app.post<{ Body: RefreshBody }>('/api/auth/refresh', {
    schema: { body: refreshSchema, response: { 200: tokenResponse, 401: errorResponse } }
  }, async (request) => {
    const hash = sha256(request.body.refreshToken)
    const record = await store.refreshToken(hash)
    if (record === null) throw httpError(401, 'invalid refresh token')
    const session = await store.session(record.sessionId)
    const at = now()
    if (session === null || session.revokedAt !== null) throw httpError(401, 'invalid refresh token')
    if (record.usedAt !== null) {
      // A rotated token came back: whoever holds the family may be an attacker. End the session for everyone.
      await store.revokeSession(session.id, at)
      request.log.warn({ userId: record.userId, sessionId: session.id }, 'refresh token reuse: session revoked')
      throw httpError(401, 'invalid refresh token')
    }
    if (record.expiresAt <= at) throw httpError(401, 'invalid refresh token')
    const user = await store.userById(record.userId)
    if (user === null) throw httpError(401, 'invalid refresh token')
    const issued = await issueTokens(user, session.id)
    const rotated = await store.rotateRefreshToken(hash, at, {
      hash: issued.hash, sessionId: session.id, userId: user.id, createdAt: at, expiresAt: at + config.refreshTokenTtl * 1000, usedAt: null
    })
    if (!rotated) {
      // Lost a race with another exchange of the same token: that is a reuse as well.
      await store.revokeSession(session.id, at)
      throw httpError(401, 'invalid refresh token')
    }
    return issued
  })

  app.post<{ Body: RefreshBody }>('/api/auth/logout', { schema: { body: refreshSchema } }, async (request, reply) => {
    const record = await store.refreshToken(sha256(request.body.refreshToken))
    // Idempotent, and silent about unknown tokens.
    if (record !== null) {
      await store.revokeSession(record.sessionId, now())
      request.log.info({ userId: record.userId, sessionId: record.sessionId }, 'logout')
    }
    return await reply.code(204).send()
  })

  async function authenticate (header: string | undefined): Promise<AccessClaims | null> {
    const match = header === undefined ? null : BEARER.exec(header)
    if (match === null) return null
    const claims = verifyAccessToken(settings, match[1] as string, now())
    if (claims === null) return null
    // Forward auth sees logout at once, unlike gateways that only check the signature.
    const session = await store.session(claims.sid)
    return session === null || session.revokedAt !== null ? null : claims
  }

  app.get('/api/auth/validate-token', async (request, reply) => {
    const claims = await authenticate(request.headers.authorization)
    if (claims === null) {
      reply.header('www-authenticate', 'Bearer realm="example-auth", error="invalid_token"')
      throw httpError(401, 'missing or invalid access token')
    }
    reply.headers({ 'x-user-id': claims.sub, 'x-user-roles': claims.roles.join(','), 'x-user-permissions': claims.permissions.join(','), 'cache-control': 'no-store' })
    return { sub: claims.sub, email: claims.email, roles: claims.roles, permissions: claims.permissions }
  })

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    return { keys: [key.jwk] }
  })

  app.get('/health', async () => ({ status: 'ok', store: store.kind }))

  return app
}
