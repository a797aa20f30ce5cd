import pg from 'pg'
import type { RefreshTokenRecord, Session, Store, User } from './types.js'

function identifier (name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

interface UserRow { id: string, email: string, password_hash: string, roles: string[], created_at: string }
interface SessionRow { id: string, user_id: string, created_at: string, revoked_at: string | null }
interface TokenRow { hash: string, session_id: string, user_id: string, created_at: string, expires_at: string, used_at: string | null }

const toUser = (row: UserRow): User => ({ id: row.id, email: row.email, passwordHash: row.password_hash, roles: row.roles, createdAt: Number(row.created_at) })
const toSession = (row: SessionRow): Session => ({ id: row.id, userId: row.user_id, createdAt: Number(row.created_at), revokedAt: row.revoked_at === null ? null : Number(row.revoked_at) })
const toToken = (row: TokenRow): RefreshTokenRecord => ({
  hash: row.hash,
  sessionId: row.session_id,
  userId: row.user_id,
  createdAt: Number(row.created_at),
  expiresAt: Number(row.expires_at),
  usedAt: row.used_at === null ? null : Number(row.used_at)
})

/** PostgreSQL through a `pg` pool; tables (and the schema) are created when absent. */
export class PostgresStore implements Store {
  readonly kind = 'postgres'
  private readonly pool: pg.Pool
  private readonly users: string
  private readonly sessions: string
  private readonly tokens: string

  constructor (connectionString: string, private readonly schema = 'public') {
    this.pool = new pg.Pool({ connectionString, max: 10 })
    // An idle client losing its connection must not crash the process.
    this.pool.on('error', () => {})
    const s = identifier(schema)
    this.users = `${s}.users`
    this.sessions = `${s}.sessions`
    this.tokens = `${s}.refresh_tokens`
  }

  async init (): Promise<void> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      // Serialise concurrent first starts (CREATE ... IF NOT EXISTS can still race on the catalogue).
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tollgate-example-auth:${this.schema}`])
      if (this.schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS ${identifier(this.schema)}`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.users} (
        id text PRIMARY KEY,
        email text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        roles text[] NOT NULL,
        created_at bigint NOT NULL
      )`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.sessions} (
        id text PRIMARY KEY,
        user_id text NOT NULL REFERENCES ${this.users} (id) ON DELETE CASCADE,
        created_at bigint NOT NULL,
        revoked_at bigint
      )`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.tokens} (
        hash text PRIMARY KEY,
        session_id text NOT NULL REFERENCES ${this.sessions} (id) ON DELETE CASCADE,
        user_id text NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        used_at bigint
      )`)
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  async close (): Promise<void> {
    await this.pool.end()
  }

  async createUser (user: User): Promise<boolean> {
    const result = await this.pool.query(
      `INSERT INTO ${this.users} (id, email, password_hash, roles, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING`,
      [user.id, user.email, user.passwordHash, user.roles, user.createdAt]
    )
    return result.rowCount === 1
  }

  async userByEmail (email: string): Promise<User | null> {
    const result = await this.pool.query<UserRow>(`SELECT * FROM ${this.users} WHERE email = $1`, [email])
    return result.rows[0] === undefined ? null : toUser(result.rows[0])
  }

  async userById (id: string): Promise<User | null> {
    const result = await this.pool.query<UserRow>(`SELECT * FROM ${this.users} WHERE id = $1`, [id])
    return result.rows[0] === undefined ? null : toUser(result.rows[0])
  }

  async createSession (session: Session, first: RefreshTokenRecord): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(`INSERT INTO ${this.sessions} (id, user_id, created_at, revoked_at) VALUES ($1, $2, $3, $4)`,
        [session.id, session.userId, session.createdAt, session.revokedAt])
      await this.insertToken(client, first)
    })
  }

  async session (id: string): Promise<Session | null> {
    const result = await this.pool.query<SessionRow>(`SELECT * FROM ${this.sessions} WHERE id = $1`, [id])
    return result.rows[0] === undefined ? null : toSession(result.rows[0])
  }

  async revokeSession (id: string, at: number): Promise<void> {
    await this.pool.query(`UPDATE ${this.sessions} SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, [id, at])
  }

  async refreshToken (hash: string): Promise<RefreshTokenRecord | null> {
    const result = await this.pool.query<TokenRow>(`SELECT * FROM ${this.tokens} WHERE hash = $1`, [hash])
    return result.rows[0] === undefined ? null : toToken(result.rows[0])
  }

  async rotateRefreshToken (hash: string, at: number, next: RefreshTokenRecord): Promise<boolean> {
    return await this.transaction(async (client) => {
      const used = await client.query(`UPDATE ${this.tokens} SET used_at = $2 WHERE hash = $1 AND used_at IS NULL`, [hash, at])
      if (used.rowCount !== 1) return false
      await this.insertToken(client, next)
      return true
    })
  }

  private async insertToken (client: pg.PoolClient, token: RefreshTokenRecord): Promise<void> {
    await client.query(
      `INSERT INTO ${this.tokens} (hash, session_id, user_id, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [token.hash, token.sessionId, token.userId, token.createdAt, token.expiresAt, token.usedAt]
    )
  }

  private async transaction<T> (work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      const result = await work(client)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }
}
