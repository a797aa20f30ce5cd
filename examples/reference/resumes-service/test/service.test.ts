// The real service (dist/main.js, a NestJS microservice on Transport.TCP) in its own
// process, driven with NestJS's own ClientTCP and the envelopes the gateway sends.
import t from 'tap'
import { patterns } from '../src/patterns.js'
import type { Resume } from '../src/store.js'
import { emit, envelope, failure, send, startService } from './helpers/service.js'

const ADA = 'user-ada'
const BOB = 'user-bob'

t.test('create, list, get, update and delete: the owner is always the envelope\'s identity', async (t) => {
  const { client } = await startService(t)
  const created = await send<Resume>(client, patterns.create, envelope(ADA, { body: { title: '  Backend engineer ', summary: 'Node.js', skills: [' TypeScript', 'NestJS'] } }))
  t.match(created, { id: /^[0-9a-f-]{36}$/, ownerId: ADA, title: 'Backend engineer', summary: 'Node.js', skills: ['TypeScript', 'NestJS'], version: 1, views: 0 })
  t.match(created.internalNotes, [/created by request req-/], 'the request id is kept for the operators')
  t.equal(created.createdAt, created.updatedAt)

  t.same(await send(client, patterns.list, envelope(ADA)), [created], 'listed for its owner')
  t.same(await send(client, patterns.get, envelope(ADA, { params: { id: created.id } })), created)

  const updated = await send<Resume>(client, patterns.update, envelope(ADA, { params: { id: created.id }, body: { title: 'Staff engineer', version: 1 } }))
  t.match(updated, { id: created.id, title: 'Staff engineer', summary: 'Node.js', version: 2 })
  t.same(await failure(client, patterns.update, envelope(ADA, { params: { id: created.id }, body: { summary: 'stale', version: 1 } })),
    { statusCode: 409, message: 'the resume is at version 2, not 1: read it again before changing it' }, 'a stale version is refused')

  t.equal(await send(client, patterns.delete, envelope(ADA, { params: { id: created.id } })), undefined, 'delete answers nothing')
  t.same(await failure(client, patterns.get, envelope(ADA, { params: { id: created.id } })), { statusCode: 404, message: 'resume not found' })
  t.same(await send(client, patterns.list, envelope(ADA)), [])
})

t.test('another user\'s resume is 404 for get, update and delete, and absent from their list', async (t) => {
  const { client } = await startService(t)
  const mine = await send<Resume>(client, patterns.create, envelope(ADA, { body: { title: 'Ada\'s resume' } }))
  const notFound = { statusCode: 404, message: 'resume not found' }
  t.same(await failure(client, patterns.get, envelope(BOB, { params: { id: mine.id } })), notFound)
  t.same(await failure(client, patterns.update, envelope(BOB, { params: { id: mine.id }, body: { title: 'taken over' } })), notFound)
  t.same(await failure(client, patterns.update, envelope(BOB, { params: { id: mine.id }, body: 'not even an object' })), notFound, 'ownership is checked before the body')
  t.same(await failure(client, patterns.delete, envelope(BOB, { params: { id: mine.id } })), notFound)
  t.same(await send(client, patterns.list, envelope(BOB)), [])
  t.same(await send(client, patterns.get, envelope(ADA, { params: { id: mine.id } })), mine, 'unchanged for its owner')
})

t.test('fields the caller may not set are ignored: owner, id, version, views, notes', async (t) => {
  const { client } = await startService(t)
  const created = await send<Resume>(client, patterns.create, envelope(ADA, {
    body: { title: 'Mine', ownerId: BOB, id: 'chosen-id', version: 42, views: 1000, internalNotes: ['approved'] }
  }))
  t.match(created, { ownerId: ADA, version: 1, views: 0 })
  t.not(created.id, 'chosen-id')
  t.notMatch(created.internalNotes, ['approved'])
  t.same(await send(client, patterns.list, envelope(BOB)), [], 'bob owns nothing')
})

t.test('bad input is 400 with every problem named; no identity is 401; no envelope is 400', async (t) => {
  const { client } = await startService(t)
  t.same(await failure(client, patterns.create, envelope(ADA, { body: { summary: 'no title' } })),
    { statusCode: 400, message: ['title must be a string of 1 to 200 characters'] })
  t.same(await failure(client, patterns.create, envelope(ADA, { body: { title: ' ', summary: 7, skills: ['ok', ''] } })), {
    statusCode: 400,
    message: ['title must be a string of 1 to 200 characters', 'summary must be a string of at most 5000 characters', 'skills must be a list of at most 50 strings of 1 to 50 characters']
  })
  t.same(await failure(client, patterns.create, envelope(ADA, { body: { title: 'x'.repeat(201) } })), { statusCode: 400, message: ['title must be a string of 1 to 200 characters'] })
  t.same(await failure(client, patterns.create, envelope(ADA, { body: ['title'] })), { statusCode: 400, message: 'the body must be a JSON object { title, summary?, skills? }' })
  t.same(await failure(client, patterns.create, envelope(ADA)), { statusCode: 400, message: 'the body must be a JSON object { title, summary?, skills? }' }, 'an empty body arrives as null')

  const resume = await send<Resume>(client, patterns.create, envelope(ADA, { body: { title: 'Valid' } }))
  const id = { id: resume.id }
  t.same(await failure(client, patterns.update, envelope(ADA, { params: id, body: {} })), { statusCode: 400, message: ['nothing to change: send title, summary or skills'] })
  t.same(await failure(client, patterns.update, envelope(ADA, { params: id, body: { title: 'ok', version: '2' } })), { statusCode: 400, message: ['version must be a positive integer'] })
  t.same(await failure(client, patterns.list, envelope(ADA, { query: { limit: '0', offset: '-1' } })),
    { statusCode: 400, message: ['limit must be an integer from 1 to 100', 'offset must be an integer from 0 to 1000000'] })
  t.same(await send(client, patterns.list, envelope(ADA, { query: { limit: '1', offset: '0' } })), [resume])

  t.same(await failure(client, patterns.list, envelope(null)), { statusCode: 401, message: 'no verified identity: the gateway must authenticate this route' })
  t.same(await failure(client, patterns.list, { body: { ownerId: ADA } }), { statusCode: 400, message: 'expected the gateway\'s envelope: map this pattern with data: envelope' })
})

t.test('object patterns match whatever the key order; a pattern nobody handles gets NestJS\'s no-handler error', async (t) => {
  const { client } = await startService(t)
  t.same(await send(client, { cmd: 'list_resumes', service: 'resumes' }, envelope(ADA)), [])
  t.match(await failure(client, { service: 'resumes', cmd: 'no_such_thing' }, envelope(ADA)), /no matching message handler/)
})

t.test('resume_viewed counts the owner\'s views; other callers and bad envelopes change nothing', async (t) => {
  const { client, output } = await startService(t)
  const resume = await send<Resume>(client, patterns.create, envelope(ADA, { body: { title: 'Seen' } }))
  const views = async (): Promise<number> => (await send<Resume>(client, patterns.get, envelope(ADA, { params: { id: resume.id } }))).views

  await emit(client, patterns.viewed, envelope(ADA, { params: { id: resume.id } }))
  await emit(client, patterns.viewed, envelope(BOB, { params: { id: resume.id } }))
  await emit(client, patterns.viewed, { not: 'an envelope' })
  await emit(client, patterns.viewed, envelope(ADA, { params: { id: resume.id } }))
  // Events carry no reply: wait (boundedly) until both of ada's views are counted.
  let seen = await views()
  for (let i = 0; i < 50 && seen < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    seen = await views()
  }
  t.equal(seen, 2, 'ada\'s two views, not bob\'s')
  t.match(output(), /resume_viewed dropped: .*expected the gateway's envelope/, 'the bad envelope was logged')
})

t.test('at most 50 resumes per user', async (t) => {
  const { client } = await startService(t)
  for (let i = 0; i < 50; i++) await send(client, patterns.create, envelope(ADA, { body: { title: `resume ${i}` } }))
  t.same(await failure(client, patterns.create, envelope(ADA, { body: { title: 'one more' } })), { statusCode: 409, message: 'at most 50 resumes per user: delete one first' })
  t.match(await send(client, patterns.create, envelope(BOB, { body: { title: 'bob has room' } })), { ownerId: BOB }, 'the cap is per user')
  const page = await send<Resume[]>(client, patterns.list, envelope(ADA, { query: { limit: '100' } }))
  t.equal(page.length, 50)
})

t.test('SIGTERM closes the service with exit 0; a taken port or a bad LOG_LEVEL makes it exit at once', async (t) => {
  const first = await startService(t)
  const second = await startService(t, { PORT: String(first.port) }).then(() => null, (error: Error) => error)
  t.match(second?.message, /exited before listening[\s\S]*cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/, 'the second one exits, saying why')
  const loud = await startService(t, { LOG_LEVEL: 'loud' }).then(() => null, (error: Error) => error)
  t.match(loud?.message, /LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent \(got "loud"\)/)

  first.child.kill('SIGTERM')
  t.equal(await first.exit, 0)
})
