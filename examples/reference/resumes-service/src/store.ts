import { randomUUID } from 'node:crypto'

/** The internal model: `ownerId` and `internalNotes` are not meant for clients (the gateway's response schema drops them). */
export interface Resume {
  id: string
  /** The token's subject of whoever created it; never taken from a request body. */
  ownerId: string
  title: string
  summary: string
  skills: string[]
  createdAt: string
  updatedAt: string
  /** 1 on creation, bumped by every update; an update may name the version it read (409 when stale). */
  version: number
  /** Counted from `resume_viewed` events. */
  views: number
  /** Audit lines for the service's operators (which request created or changed it). */
  internalNotes: string[]
}

export interface ResumeInput { title: string, summary: string, skills: string[] }
export type ResumeChanges = Partial<ResumeInput>

/** At most this many resumes per owner: the store is memory, and memory is finite. */
export const MAX_PER_OWNER = 50
/** Audit lines kept per resume (the oldest go first). */
const MAX_NOTES = 20

/**
 * In memory, per process: the embedded default of the reference deployment (a real
 * service would keep resumes in a database). Resumes are kept per owner and every
 * method takes the owner, so a lookup never crosses from one user's resumes to another's.
 */
export class ResumeStore {
  private readonly byOwner = new Map<string, Map<string, Resume>>()

  constructor (private readonly now: () => Date = () => new Date()) {}

  /** The owner's resumes, newest first. */
  list (ownerId: string, page: { limit: number, offset: number }): Resume[] {
    return [...(this.byOwner.get(ownerId)?.values() ?? [])]
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id))
      .slice(page.offset, page.offset + page.limit)
  }

  count (ownerId: string): number {
    return this.byOwner.get(ownerId)?.size ?? 0
  }

  /** The resume when it exists and belongs to `ownerId`: another owner's is as absent as a missing one. */
  get (ownerId: string, id: string): Resume | undefined {
    return this.byOwner.get(ownerId)?.get(id)
  }

  create (ownerId: string, input: ResumeInput, note: string): Resume {
    const at = this.now().toISOString()
    const resume: Resume = { id: randomUUID(), ownerId, ...input, createdAt: at, updatedAt: at, version: 1, views: 0, internalNotes: [] }
    addNote(resume, `${at} ${note}`)
    let mine = this.byOwner.get(ownerId)
    if (mine === undefined) this.byOwner.set(ownerId, mine = new Map())
    mine.set(resume.id, resume)
    return resume
  }

  update (resume: Resume, changes: ResumeChanges, note: string): Resume {
    if (changes.title !== undefined) resume.title = changes.title
    if (changes.summary !== undefined) resume.summary = changes.summary
    if (changes.skills !== undefined) resume.skills = changes.skills
    resume.updatedAt = this.now().toISOString()
    resume.version += 1
    addNote(resume, `${resume.updatedAt} ${note}`)
    return resume
  }

  viewed (resume: Resume): void {
    resume.views += 1
  }

  delete (resume: Resume): void {
    const mine = this.byOwner.get(resume.ownerId)
    mine?.delete(resume.id)
    if (mine?.size === 0) this.byOwner.delete(resume.ownerId)
  }
}

function addNote (resume: Resume, note: string): void {
  resume.internalNotes.push(note)
  if (resume.internalNotes.length > MAX_NOTES) resume.internalNotes.splice(0, resume.internalNotes.length - MAX_NOTES)
}
