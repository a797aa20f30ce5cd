/** Times are milliseconds since the epoch. */
export interface User {
  id: string
  /** Lower-cased. Unique. */
  email: string
  passwordHash: string
  roles: string[]
  createdAt: number
}

/** A refresh-token family: one login, and every token rotated from it. */
export interface Session {
  id: string
  userId: string
  createdAt: number
  revokedAt: number | null
}

export interface RefreshTokenRecord {
  /** SHA-256 (hex) of the opaque token; the token itself is never stored. */
  hash: string
  sessionId: string
  userId: string
  createdAt: number
  expiresAt: number
  /** Set when the token was exchanged; a second exchange is a reuse. */
  usedAt: number | null
}

export interface Store {
  readonly kind: 'memory' | 'file' | 'postgres'
  init(): Promise<void>
  close(): Promise<void>
  /** False when the e-mail is taken. */
  createUser(user: User): Promise<boolean>
  userByEmail(email: string): Promise<User | null>
  userById(id: string): Promise<User | null>
  createSession(session: Session, first: RefreshTokenRecord): Promise<void>
  session(id: string): Promise<Session | null>
  /** Revokes the session (the whole refresh-token family). */
  revokeSession(id: string, at: number): Promise<void>
  refreshToken(hash: string): Promise<RefreshTokenRecord | null>
  /**
   * Atomically marks an unused token used and stores its successor. Returns false,
   * storing nothing, when the token was already used (a reuse, or a concurrent rotation).
   */
  rotateRefreshToken(hash: string, at: number, next: RefreshTokenRecord): Promise<boolean>
}
