import { randomUUID } from 'node:crypto'
import type { Server as HttpServer } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { Server, type Socket } from 'socket.io'
import { userIdFrom } from './identity.js'
import type { Meetings } from './meetings.js'

/** Where Socket.io listens: under the gateway's `/api/meetings` WebSocket route. */
export const SOCKET_PATH = '/api/meetings/socket.io'
export const MAX_MESSAGE_LENGTH = 2000

export interface ChatMessage { id: string, meetingId: string, from: string, text: string, sentAt: string }
export type Ack = (answer: { ok: true, [key: string]: unknown } | { ok: false, code: string, message: string }) => void

/** What the handshake established; kept in `socket.data`. */
interface SocketData { userId: string }
const dataOf = (socket: Socket): SocketData => socket.data as SocketData

const room = (meetingId: string): string => `meeting:${meetingId}`
const MESSAGES: Record<string, string> = {
  MEETING_NOT_FOUND: 'no such meeting',
  MEETING_FULL: 'the meeting is full',
  NOT_IN_MEETING: 'join the meeting first',
  BAD_MESSAGE: `a message is {meetingId, text} with 1 to ${MAX_MESSAGE_LENGTH} characters of text`
}

/**
 * Socket.io on the service's HTTP server. Events, client → server:
 * `meeting:join` (meetingId, ack), `meeting:leave` (meetingId, ack), `chat:message` ({meetingId, text}, ack).
 * Server → clients: `meeting:participants` {meetingId, participants}, `meeting:joined` and
 * `meeting:left` {meetingId, userId}, `chat:message` {id, meetingId, from, text, sentAt},
 * `meeting:error` {meetingId, code, message}, `meeting:ended` {meetingId}. Nothing is persisted.
 */
export function attachRealtime (server: HttpServer, meetings: Meetings, log: FastifyBaseLogger): Server {
  const io = new Server(server, {
    path: SOCKET_PATH,
    serveClient: false,
    // Refuse the handshake (HTTP 403, before any upgrade) when the gateway did not vouch for the user.
    allowRequest: (request, callback) => {
      if (userIdFrom(request.headers) === null) callback('x-user-id is missing: connect through the gateway', false)
      else callback(null, true)
    },
    maxHttpBufferSize: 64 * 1024
  })

  io.use((socket, next) => {
    const userId = userIdFrom(socket.handshake.headers)
    if (userId === null) {
      next(new Error('unauthorized'))
      return
    }
    dataOf(socket).userId = userId
    next()
  })

  function fail (socket: Socket, ack: Ack | undefined, meetingId: unknown, code: string): void {
    const message = MESSAGES[code] ?? code
    socket.emit('meeting:error', { meetingId, code, message })
    if (typeof ack === 'function') ack({ ok: false, code, message })
  }

  function broadcastParticipants (meetingId: string): void {
    io.to(room(meetingId)).emit('meeting:participants', { meetingId, participants: meetings.participants(meetingId) })
  }

  function leave (socket: Socket, meetingId: string): void {
    const userId = dataOf(socket).userId
    if (!meetings.isIn(meetingId, userId, socket.id)) return
    const last = meetings.leave(meetingId, userId, socket.id)
    void socket.leave(room(meetingId))
    if (last) {
      io.to(room(meetingId)).emit('meeting:left', { meetingId, userId })
      broadcastParticipants(meetingId)
    }
  }

  io.on('connection', (socket) => {
    const userId = dataOf(socket).userId
    log.debug({ userId, socket: socket.id }, 'socket connected')

    socket.on('meeting:join', (meetingId: unknown, ack?: Ack) => {
      if (typeof meetingId !== 'string') return fail(socket, ack, meetingId, 'MEETING_NOT_FOUND')
      const joined = meetings.join(meetingId, userId, socket.id)
      if (!joined.ok) return fail(socket, ack, meetingId, joined.code)
      void socket.join(room(meetingId))
      if (joined.first) socket.to(room(meetingId)).emit('meeting:joined', { meetingId, userId })
      broadcastParticipants(meetingId)
      if (typeof ack === 'function') ack({ ok: true, participants: joined.participants })
    })

    socket.on('meeting:leave', (meetingId: unknown, ack?: Ack) => {
      if (typeof meetingId === 'string') leave(socket, meetingId)
      if (typeof ack === 'function') ack({ ok: true })
    })

    socket.on('chat:message', (input: unknown, ack?: Ack) => {
      const { meetingId, text } = (typeof input === 'object' && input !== null ? input : {}) as { meetingId?: unknown, text?: unknown }
      if (typeof meetingId !== 'string' || typeof text !== 'string' || text.trim() === '' || text.length > MAX_MESSAGE_LENGTH) {
        return fail(socket, ack, meetingId, 'BAD_MESSAGE')
      }
      if (!meetings.isIn(meetingId, userId, socket.id)) return fail(socket, ack, meetingId, 'NOT_IN_MEETING')
      const message: ChatMessage = { id: randomUUID(), meetingId, from: userId, text, sentAt: new Date().toISOString() }
      io.to(room(meetingId)).emit('chat:message', message)
      if (typeof ack === 'function') ack({ ok: true, id: message.id })
    })

    socket.on('disconnecting', () => {
      for (const name of socket.rooms) {
        if (name.startsWith('meeting:')) leave(socket, name.slice('meeting:'.length))
      }
    })
  })

  return io
}

/** Tells a deleted meeting's participants, and empties its room. */
export function endMeeting (io: Server, meetingId: string): void {
  io.to(room(meetingId)).emit('meeting:ended', { meetingId })
  io.in(room(meetingId)).socketsLeave(room(meetingId))
}
