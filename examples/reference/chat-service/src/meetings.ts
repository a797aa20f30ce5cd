import { randomUUID } from 'node:crypto'

export interface Meeting {
  id: string
  title: string
  ownerId: string
  maxParticipants: number
  createdAt: string
}

export type JoinResult = { ok: true, participants: string[], first: boolean } | { ok: false, code: 'MEETING_NOT_FOUND' | 'MEETING_FULL' }

/**
 * Meetings (in memory) and who is in them right now. A participant is a user id; one
 * user may be connected from several sockets (tabs) and counts once against the cap.
 */
export class Meetings {
  private readonly meetings = new Map<string, Meeting>()
  private readonly present = new Map<string, Map<string, Set<string>>>()

  list (): Meeting[] {
    return [...this.meetings.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  get (id: string): Meeting | undefined {
    return this.meetings.get(id)
  }

  create (input: { title: string, ownerId: string, maxParticipants: number }): Meeting {
    const meeting: Meeting = { id: randomUUID(), ...input, createdAt: new Date().toISOString() }
    this.meetings.set(meeting.id, meeting)
    return meeting
  }

  delete (id: string): boolean {
    this.present.delete(id)
    return this.meetings.delete(id)
  }

  participants (id: string): string[] {
    return [...(this.present.get(id)?.keys() ?? [])].sort()
  }

  /** Adds a socket of a user; `first` tells whether the user was not present before. */
  join (id: string, userId: string, socketId: string): JoinResult {
    const meeting = this.meetings.get(id)
    if (meeting === undefined) return { ok: false, code: 'MEETING_NOT_FOUND' }
    let users = this.present.get(id)
    if (users === undefined) {
      users = new Map()
      this.present.set(id, users)
    }
    let sockets = users.get(userId)
    const first = sockets === undefined
    if (sockets === undefined) {
      if (users.size >= meeting.maxParticipants) return { ok: false, code: 'MEETING_FULL' }
      sockets = new Set()
      users.set(userId, sockets)
    }
    sockets.add(socketId)
    return { ok: true, participants: this.participants(id), first }
  }

  /** Removes a socket; true when that was the user's last socket in the meeting. */
  leave (id: string, userId: string, socketId: string): boolean {
    const users = this.present.get(id)
    const sockets = users?.get(userId)
    if (users === undefined || sockets === undefined || !sockets.delete(socketId)) return false
    if (sockets.size > 0) return false
    users.delete(userId)
    if (users.size === 0) this.present.delete(id)
    return true
  }

  isIn (id: string, userId: string, socketId: string): boolean {
    return this.present.get(id)?.get(userId)?.has(socketId) ?? false
  }
}
