import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { callerOf, httpError, type Caller } from './identity.js'
import { ID_MAX_LENGTH, integerQuery, onRouterError, STRICT_BODIES, text } from './input.js'
import { PostStore, type Post } from './store.js'

export interface PostsAppOptions {
  /** Sent as `x-served-by` on every response, so load balancing is visible. */
  instanceId: string
  store?: PostStore
  logger?: FastifyServerOptions['logger']
}

/** The gateway-facing contract of the list: these three fields, nothing of the internal model. */
const publicSummary = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'title', 'author'],
  properties: { id: { type: 'string' }, title: { type: 'string' }, author: { type: 'string' } }
} as const

const publicPost = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    title: { type: 'string' },
    body: { type: 'string' },
    author: { type: 'string' },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' }
  }
} as const

const internalPost = {
  type: 'object',
  properties: {
    ...publicPost.properties,
    ownerId: { type: 'string' },
    internalScore: { type: 'number' },
    status: { type: 'string' },
    moderationNotes: {
      type: 'array',
      items: { type: 'object', properties: { by: { type: 'string' }, action: { type: 'string' }, note: { type: 'string' }, at: { type: 'string' } } }
    }
  }
} as const

const title = { type: 'string', minLength: 1, maxLength: 200 } as const
const body = { type: 'string', maxLength: 10000 } as const
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: ID_MAX_LENGTH } } } as const

interface IdParams { id: string }
interface PostInput { title: string, body?: string }
interface PostPatch { title?: string, body?: string }
interface ListQuery { limit: number, offset: number }
interface ModerationInput { action: 'hide' | 'restore', note?: string }

export async function buildPostsApp (options: PostsAppOptions): Promise<FastifyInstance> {
  const store = options.store ?? new PostStore()
  const app = Fastify({
    logger: options.logger ?? false,
    ajv: STRICT_BODIES,
    // The router measures the decoded id as the schema does: a longer one is the same 400 at any length.
    routerOptions: { maxParamLength: ID_MAX_LENGTH },
    frameworkErrors (error, request, reply) {
      // No route, so no onSend hook: named here as on every other answer.
      void reply.header('x-served-by', options.instanceId)
      onRouterError(error, request, reply)
    }
  })
  app.addHook('preValidation', integerQuery)

  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-served-by', options.instanceId)
  })

  const isAdmin = (caller: Caller | null): boolean => caller?.roles.has('admin') ?? false

  function requireCaller (caller: Caller | null): Caller {
    if (caller === null) throw httpError(401, 'x-user-id is missing: requests must come through the gateway')
    return caller
  }

  function visible (id: string, caller: Caller | null): Post {
    const post = store.get(id)
    if (post === undefined || (post.status === 'hidden' && post.ownerId !== caller?.id && !isAdmin(caller))) throw httpError(404, 'post not found')
    return post
  }

  function writable (id: string, caller: Caller): Post {
    const post = visible(id, caller)
    if (post.ownerId !== caller.id && !isAdmin(caller)) throw httpError(403, 'only the owner or an admin may change this post')
    return post
  }

  app.get<{ Querystring: ListQuery }>('/api/posts', {
    schema: {
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, offset: { type: 'integer', minimum: 0, default: 0 } }
      },
      response: { 200: { type: 'array', items: publicSummary } }
    }
  }, async (request) => store.list({ includeHidden: false, ...request.query }))

  app.get<{ Params: IdParams }>('/api/posts/:id', { schema: { params: idParams, response: { 200: publicPost } } }, async (request) => {
    const post = visible(request.params.id, callerOf(request))
    post.internalScore += 1
    return post
  })

  app.post<{ Body: PostInput }>('/api/posts', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['title'], properties: { title, body } },
      response: { 201: publicPost }
    }
  }, async (request, reply) => {
    const caller = requireCaller(callerOf(request))
    const post = store.create({ title: text('title', request.body.title), body: request.body.body ?? '', ownerId: caller.id, author: caller.name })
    request.log.info({ postId: post.id, ownerId: caller.id }, 'post created')
    return await reply.code(201).header('location', `/api/posts/${post.id}`).send(post)
  })

  app.put<{ Params: IdParams, Body: PostInput }>('/api/posts/:id', {
    schema: {
      params: idParams,
      body: { type: 'object', additionalProperties: false, required: ['title', 'body'], properties: { title, body } },
      response: { 200: publicPost }
    }
  }, async (request) => {
    const caller = requireCaller(callerOf(request))
    return store.update(writable(request.params.id, caller), { title: text('title', request.body.title), body: request.body.body })
  })

  app.patch<{ Params: IdParams, Body: PostPatch }>('/api/posts/:id', {
    schema: {
      params: idParams,
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { title, body } },
      response: { 200: publicPost }
    }
  }, async (request) => {
    const post = writable(request.params.id, requireCaller(callerOf(request)))
    const { title, body } = request.body
    return store.update(post, { title: title === undefined ? undefined : text('title', title), body })
  })

  app.delete<{ Params: IdParams }>('/api/posts/:id', { schema: { params: idParams } }, async (request, reply) => {
    const caller = requireCaller(callerOf(request))
    store.delete(writable(request.params.id, caller).id)
    return await reply.code(204).send()
  })

  // Moderation. The gateway routes /api/admin → /admin and already requires the admin
  // role; the service checks it again (defence in depth: never trust one layer alone).
  function requireAdmin (caller: Caller | null): Caller {
    const known = requireCaller(caller)
    if (!isAdmin(known)) throw httpError(403, 'admin role required')
    return known
  }

  app.get<{ Querystring: ListQuery }>('/admin/posts', {
    schema: {
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 100 }, offset: { type: 'integer', minimum: 0, default: 0 } }
      },
      response: { 200: { type: 'array', items: internalPost } }
    }
  }, async (request) => {
    requireAdmin(callerOf(request))
    return store.list({ includeHidden: true, ...request.query })
  })

  app.post<{ Params: IdParams, Body: ModerationInput }>('/admin/posts/:id/moderate', {
    schema: {
      params: idParams,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['action'],
        properties: { action: { enum: ['hide', 'restore'] }, note: { type: 'string', maxLength: 1000 } }
      },
      response: { 200: internalPost }
    }
  }, async (request) => {
    const admin = requireAdmin(callerOf(request))
    const post = store.get(request.params.id)
    if (post === undefined) throw httpError(404, 'post not found')
    request.log.info({ postId: post.id, by: admin.id, action: request.body.action }, 'post moderated')
    return store.moderate(post, admin.id, request.body.action, request.body.note ?? '')
  })

  app.get('/health', async () => ({ status: 'ok', instance: options.instanceId }))

  return app
}
