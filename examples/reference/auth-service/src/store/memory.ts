import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { RefreshTokenRecord, Session, Store, User } from './types.js'

interface Snapshot {
  version: 1
  users: User[]
  sessions: Session[]
  refreshTokens: RefreshTokenRecord[]
}

/**
 * The embedded default: maps in memory, optionally persisted to one JSON file.
 * Every change rewrites the file to a temporary name then renames it over the old
 * one, so a crash leaves either the old or the new state, never half a file.
 * Writes are serialised; a request is answered after its change is on disk.
 * One process per file: two processes sharing a DATA_FILE would overwrite each other.
 */
export class MemoryStore implements Store {
  readonly kind: 'memory' | 'file'
  private readonly users = new Map<string, User>()
  private readonly emails = new Map<string, string>()
  private readonly sessions = new Map<string, Session>()
  private readonly tokens = new Map<string, RefreshTokenRecord>()
  private writing: Promise<void> = Promise.resolve()

  constructor (private readonly file?: string, private readonly now: () => number = Date.now) {
    this.kind = file === undefined ? 'memory' : 'file'
  }

  async init (): Promise<void> {
    if (this.file === undefined) return
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    const snapshot = JSON.parse(text) as Snapshot
    if (snapshot.version !== 1) throw new Error(`${this.file}: unsupported data file version ${String(snapshot.version)}`)
    for (const user of snapshot.users) {
      this.users.set(user.id, user)
      this.emails.set(user.email, user.id)
    }
    for (const session of snapshot.sessions) this.sessions.set(session.id, session)
    for (const token of snapshot.refreshTokens) this.tokens.set(token.hash, token)
  }

  async close (): Promise<void> {
    await this.writing
  }

  private persist (): Promise<void> {
    const file = this.file
    if (file === undefined) return Promise.resolve()
    const write = async (): Promise<void> => {
      const now = this.now()
      for (const [hash, token] of this.tokens) if (token.expiresAt <= now) this.tokens.delete(hash)
      const snapshot: Snapshot = {
        version: 1,
        users: [...this.users.values()],
        sessions: [...this.sessions.values()],
        refreshTokens: [...this.tokens.values()]
      }
      await mkdir(dirname(file), { recursive: true })
      const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
      try {
        await writeFile(temporary, JSON.stringify(snapshot), { mode: 0o600, flush: true })
        await rename(temporary, file)
      } catch (error) {
        await rm(temporary, { force: true })
        throw error
      }
    }
    const next = this.writing.then(write, write)
    this.writing = next.catch(() => {})
    return next
  }

  async createUser (user: User): Promise<boolean> {
    if (this.emails.has(user.email)) return false
    this.users.set(user.id, { ...user })
    this.emails.set(user.email, user.id)
    await this.persist()
    return true
  }

  async userByEmail (email: string): Promise<User | null> {
    const id = this.emails.get(email)
    return id === undefined ? null : await this.userById(id)
  }

  async userById (id: string): Promise<User | null> {
    const user = this.users.get(id)
    return user === undefined ? null : { ...user, roles: [...user.roles] }
  }

  async createSession (session: Session, first: RefreshTokenRecord): Promise<void> {
    this.sessions.set(session.id, { ...session })
    this.tokens.set(first.hash, { ...first })
    await this.persist()
  }

  async session (id: string): Promise<Session | null> {
    const session = this.sessions.get(id)
    return session === undefined ? null : { ...session }
  }

  async revokeSession (id: string, at: number): Promise<void> {
    const session = this.sessions.get(id)
    if (session === undefined || session.revokedAt !== null) return
    session.revokedAt = at
    await this.persist()
  }

  async refreshToken (hash: string): Promise<RefreshTokenRecord | null> {
    const token = this.tokens.get(hash)
    return token === undefined ? null : { ...token }
  }

  async rotateRefreshToken (hash: string, at: number, next: RefreshTokenRecord): Promise<boolean> {
    const token = this.tokens.get(hash)
    if (token === undefined || token.usedAt !== null) return false
    token.usedAt = at
    this.tokens.set(next.hash, { ...next })
    await this.persist()
    return true
  }
}
