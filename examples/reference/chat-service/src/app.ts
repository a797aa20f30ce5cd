import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Server } from 'socket.io'
import { httpError, userIdFrom } from './identity.js'
import { ID_MAX_LENGTH, onRouterError, STRICT_BODIES, text } from './input.js'
import { Meetings, type Meeting } from './meetings.js'
import { attachRealtime, endMeeting } from './realtime.js'

export interface ChatAppOptions {
  /** Cap used when a meeting is created without one (env MAX_PARTICIPANTS, default 10). */
  defaultMaxParticipants?: number
  logger?: FastifyServerOptions['logger']
}

export const MAX_PARTICIPANTS_LIMIT = 100

declare module 'fastify' {
  interface FastifyInstance {
    io: Server
  }
}

const meetingSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    title: { type: 'string' },
    ownerId: { type: 'string' },
    maxParticipants: { type: 'integer' },
    createdAt: { type: 'string' },
    participants: { type: 'array', items: { type: 'string' } }
  }
} as const

const title = { type: 'string', minLength: 1, maxLength: 200 } as const
const maxParticipants = { type: 'integer', minimum: 2, maximum: MAX_PARTICIPANTS_LIMIT } as const
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: ID_MAX_LENGTH } } } as const

interface IdParams { id: string }
interface MeetingInput { title: string, maxParticipants?: number }
interface MeetingPatch { title?: string, maxParticipants?: number }

/** The chat service: meetings over HTTP, chat over Socket.io on the same server. */
export async function buildChatApp (options: ChatAppOptions = {}): Promise<FastifyInstance> {
  const defaultMax = options.defaultMaxParticipants ?? 10
  if (!Number.isInteger(defaultMax) || defaultMax < 2 || defaultMax > MAX_PARTICIPANTS_LIMIT) {
    throw new Error(`defaultMaxParticipants must be an integer from 2 to ${MAX_PARTICIPANTS_LIMIT}`)
  }
  const meetings = new Meetings()
  const app = Fastify({
    logger: options.logger ?? false,
    ajv: STRICT_BODIES,
    // The router measures the decoded id as the schema does: a longer one is the same 400 at any length.
    routerOptions: { maxParamLength: ID_MAX_LENGTH },
    frameworkErrors: onRouterError
  })
  const io = attachRealtime(app.server, meetings, app.log)
  app.decorate('io', io)
  // Upgraded sockets would keep the HTTP server from closing: end them first.
  app.addHook('preClose', async () => {
    io.disconnectSockets(true)
    io.engine.close()
  })

  const view = (meeting: Meeting): Meeting & { participants: string[] } => ({ ...meeting, participants: meetings.participants(meeting.id) })

  function requireUser (headers: Parameters<typeof userIdFrom>[0]): string {
    const userId = userIdFrom(headers)
    if (userId === null) throw httpError(401, 'x-user-id is missing: requests must come through the gateway')
    return userId
  }

  function owned (id: string, userId: string): Meeting {
    const meeting = meetings.get(id)
    if (meeting === undefined) throw httpError(404, 'meeting not found')
    if (meeting.ownerId !== userId) throw httpError(403, 'only the owner may change this meeting')
    return meeting
  }

  app.get('/api/meetings', { schema: { response: { 200: { type: 'array', items: meetingSchema } } } }, async () => meetings.list().map(view))

  app.get<{ Params: IdParams }>('/api/meetings/:id', { schema: { params: idParams, response: { 200: meetingSchema } } }, async (request) => {
    const meeting = meetings.get(request.params.id)
    if (meeting === undefined) throw httpError(404, 'meeting not found')
    return view(meeting)
  })

  app.post<{ Body: MeetingInput }>('/api/meetings', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['title'], properties: { title, maxParticipants } },
      response: { 201: meetingSchema }
    }
  }, async (request, reply) => {
    const ownerId = requireUser(request.headers)
    const meeting = meetings.create({ title: text('title', request.body.title), ownerId, maxParticipants: request.body.maxParticipants ?? defaultMax })
    return await reply.code(201).header('location', `/api/meetings/${meeting.id}`).send(view(meeting))
  })

  app.patch<{ Params: IdParams, Body: MeetingPatch }>('/api/meetings/:id', {
    schema: {
      params: idParams,
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { title, maxParticipants } },
      response: { 200: meetingSchema }
    }
  }, async (request) => {
    const meeting = owned(request.params.id, requireUser(request.headers))
    const title = request.body.title === undefined ? undefined : text('title', request.body.title)
    // Lowering the cap never ejects anyone; it only stops new participants.
    if (title !== undefined) meeting.title = title
    if (request.body.maxParticipants !== undefined) meeting.maxParticipants = request.body.maxParticipants
    return view(meeting)
  })

  app.delete<{ Params: IdParams }>('/api/meetings/:id', { schema: { params: idParams } }, async (request, reply) => {
    const meeting = owned(request.params.id, requireUser(request.headers))
    endMeeting(io, meeting.id)
    meetings.delete(meeting.id)
    return await reply.code(204).send()
  })

  app.get('/health', async () => ({ status: 'ok', sockets: io.engine.clientsCount }))

  return app
}
