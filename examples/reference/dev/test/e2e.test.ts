// Issue 7's end-to-end test: the whole reference deployment, started by the one-command
// starter on free ports, driven the way a client drives it, through the gateway only.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { Socket } from 'socket.io-client'
import { call, chatClient, connected, nextEvent, stopStarter, upgrade, type Answer } from './helpers/client.js'
import { ensureBuilt, freePorts, runStarter } from './helpers/starter.js'

ensureBuilt()

const PASSWORD = 'correct horse battery'
const ADMIN_EMAIL = 'boss@example.com'
const ADMIN_PASSWORD = 'boss password'
const PARTNER_KEY = 'example-partner-key'
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Account { email: string, from: string, id: string, access: string, refresh: string }
interface PostSummary { id: string, title: string, author: string }
interface InternalPost extends PostSummary { ownerId: string, status: string, internalScore: number, moderationNotes: unknown[] }
interface Resume { id: string, title: string, version: number, views: number }

/** Starts the starter on free ports; everything it started is stopped (and checked stopped) at teardown. */
async function startDeployment (t: Test, env: Record<string, string> = {}): Promise<string> {
  const [gateway, auth, postsA, postsB, chat, resumes] = await freePorts(6) as [number, number, number, number, number, number]
  const run = runStarter([], {
    GATEWAY_PORT: String(gateway),
    AUTH_PORT: String(auth),
    POSTS_A_PORT: String(postsA),
    POSTS_B_PORT: String(postsB),
    CHAT_PORT: String(chat),
    RESUMES_PORT: String(resumes),
    ADMIN_EMAILS: ADMIN_EMAIL,
    ADMIN_PASSWORD,
    REDIS_URL: '',
    ...env
  })
  t.teardown(async () => {
    const code = await stopStarter(run.child, run.exit)
    if (code !== 0) console.error(`the starter did not stop cleanly (${String(code)}):\n${run.output()}`)
  })
  await run.ready(90_000)
  return `http://127.0.0.1:${gateway}`
}

function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

/** Repeats `request` (at most `tries` times) until `instance` of the posts service answered it. */
async function onInstance (instance: string, request: () => Promise<Answer>, tries = 4): Promise<Answer> {
  let answer: Answer | undefined
  for (let i = 0; i < tries; i++) {
    answer = await request()
    if (answer.headers['x-served-by'] === instance) return answer
  }
  throw new Error(`${tries} requests, none served by ${instance} (last: ${answer?.status ?? '-'} from ${String(answer?.headers['x-served-by'])})`)
}

/** The client's side of the whole deployment, through the gateway at `base`. */
async function clientFlow (t: Test, base: string): Promise<void> {
  // Each simulated client connects from its own loopback address, so each has its own
  // budget on the /api/auth limiter (10 requests a minute per IP), as real clients would.
  const accounts: Record<'ada' | 'bob' | 'boss', Account> = {
    ada: { email: 'ada@example.com', from: '127.0.0.11', id: '', access: '', refresh: '' },
    bob: { email: 'bob@example.com', from: '127.0.0.12', id: '', access: '', refresh: '' },
    boss: { email: ADMIN_EMAIL, from: '127.0.0.13', id: '', access: '', refresh: '' }
  }
  const { ada, bob, boss } = accounts
  let post: PostSummary = { id: '', title: '', author: '' }
  let creator = ''

  await t.test('register and log in through the gateway', async (t) => {
    for (const account of Object.values(accounts)) {
      const registered = await call(base, '/api/auth/register', { method: 'POST', body: { email: account.email, password: PASSWORD }, from: account.from })
      if (account === boss) {
        t.equal(registered.status, 409, 'the admin address exists from startup: registering cannot claim it')
      } else {
        t.equal(registered.status, 201, `${account.email} registered`)
        t.match(registered.json, { id: String, email: account.email })
      }
      const password = account === boss ? ADMIN_PASSWORD : PASSWORD
      const login = await call(base, '/api/auth/login', { method: 'POST', body: { email: account.email, password }, from: account.from })
      t.equal(login.status, 200, `${account.email} logged in`)
      t.match(login.json, { accessToken: String, refreshToken: String, tokenType: 'Bearer' })
      const tokens = login.json as { accessToken: string, refreshToken: string }
      account.access = tokens.accessToken
      account.id = (JSON.parse(Buffer.from(tokens.accessToken.split('.')[1]!, 'base64url').toString()) as { sub: string }).sub
      if (account !== boss) t.equal(account.id, (registered.json as { id: string }).id, 'the token\'s sub is the registered id')
      account.refresh = tokens.refreshToken
    }
    const again = await call(base, '/api/auth/register', { method: 'POST', body: { email: ada.email, password: PASSWORD }, from: ada.from })
    t.equal(again.status, 409, 'an e-mail registers once')
    const wrong = await call(base, '/api/auth/login', { method: 'POST', body: { email: ada.email, password: 'not the password' }, from: ada.from })
    t.equal(wrong.status, 401, 'a wrong password is refused')
  })

  await t.test('posts: created as the token\'s user whatever identity headers the client sends; the public list is id, title, author, balanced over two instances', async (t) => {
    const created = await call(base, '/api/posts', {
      method: 'POST',
      headers: { ...bearer(ada.access), 'x-user-id': bob.id, 'x-user-roles': 'admin', 'x-user-email': 'mallory@example.com' },
      body: { title: 'Hello through the gateway', body: 'internal text' }
    })
    t.equal(created.status, 201)
    post = created.json as PostSummary
    t.equal(post.author, ada.email, 'the author is the token\'s user, not the spoofed x-user-email')
    creator = String(created.headers['x-served-by'])
    t.match(creator, /^posts-[ab]$/)

    const lists = [await call(base, '/api/posts', { headers: bearer(ada.access) }), await call(base, '/api/posts', { headers: bearer(ada.access) })]
    t.same(lists.map((list) => list.status), [200, 200])
    t.same(new Set(lists.map((list) => list.headers['x-served-by'])), new Set(['posts-a', 'posts-b']), 'x-served-by alternates between the two instances')
    for (const list of lists) {
      for (const item of list.json as object[]) t.same(Object.keys(item).sort(), ['author', 'id', 'title'], 'public list items carry id, title, author only')
    }
    // The instances do not share posts (see posts-service/README.md): the creator lists it.
    const fromCreator = lists.find((list) => list.headers['x-served-by'] === creator)!
    t.same(fromCreator.json, [{ id: post.id, title: 'Hello through the gateway', author: ada.email }])

    const anonymous = await call(base, '/api/posts')
    t.equal(anonymous.status, 401, 'no credentials: 401')
    t.equal(anonymous.headers['www-authenticate'], 'Bearer realm="tollgate"')
    t.notOk(anonymous.headers['x-served-by'], 'the upstream was not reached')
    const tampered = await call(base, '/api/posts', { headers: bearer(ada.access.slice(0, -4) + (ada.access.endsWith('AAAA') ? 'BBBB' : 'AAAA')) })
    t.equal(tampered.status, 401, 'a tampered token: 401')
    t.match(tampered.headers['www-authenticate'], /error="invalid_token"/)

    // bob, pretending to be ada, cannot delete her post: the service sees bob's id.
    const deleted = await onInstance(creator, () => call(base, `/api/posts/${post.id}`, { method: 'DELETE', headers: { ...bearer(bob.access), 'x-user-id': ada.id } }))
    t.equal(deleted.status, 403, 'a spoofed x-user-id gives no ownership')
    const still = await onInstance(creator, () => call(base, `/api/posts/${post.id}`, { headers: bearer(bob.access) }))
    t.equal(still.status, 200, 'the post is still there')
  })

  await t.test('the partner API key reads /api/posts and is refused on /api/admin', async (t) => {
    const list = await call(base, '/api/posts', { headers: { 'x-api-key': PARTNER_KEY } })
    t.equal(list.status, 200)
    t.ok(Array.isArray(list.json))
    const admin = await call(base, '/api/admin/posts', { headers: { 'x-api-key': PARTNER_KEY } })
    t.ok(admin.status === 401 || admin.status === 403, `refused (${admin.status})`)
    t.notOk(admin.headers['x-served-by'], 'the upstream was not reached')
    const unknown = await call(base, '/api/posts', { headers: { 'x-api-key': 'not-a-key' } })
    t.equal(unknown.status, 401, 'an unknown API key: 401')
  })

  await t.test('an admin (ADMIN_EMAILS) moderates through /api/admin; a user claiming the role cannot', async (t) => {
    const forbidden = await call(base, '/api/admin/posts', { headers: { ...bearer(ada.access), 'x-user-roles': 'admin' } })
    t.equal(forbidden.status, 403, 'a spoofed x-user-roles gives no admin role')
    t.notOk(forbidden.headers['x-served-by'], 'the upstream was not reached')

    const internal = await onInstance(creator, () => call(base, '/api/admin/posts', { headers: bearer(boss.access) }))
    t.equal(internal.status, 200)
    const found = (internal.json as InternalPost[]).find((item) => item.id === post.id)
    t.match(found, { ownerId: ada.id, status: 'published', moderationNotes: [] }, 'the owner is the token\'s user (sub), never the spoofed x-user-id')

    const hidden = await onInstance(creator, () => call(base, `/api/admin/posts/${post.id}/moderate`, { method: 'POST', headers: bearer(boss.access), body: { action: 'hide', note: 'e2e' } }))
    t.equal(hidden.status, 200)
    t.match(hidden.json, { id: post.id, status: 'hidden', moderationNotes: [{ by: boss.id, action: 'hide', note: 'e2e' }] })
    const list = await onInstance(creator, () => call(base, '/api/posts', { headers: bearer(bob.access) }))
    t.same(list.json, [], 'a hidden post leaves the public list')
  })

  await t.test('resumes: HTTP at the gateway, NestJS message patterns over TCP behind it; each resume belongs to the token\'s user', async (t) => {
    const ready = await call(base, '/readyz')
    const checks = (ready.json as { checks: Array<{ name: string, ok: boolean }> }).checks
    t.same(checks.find((check) => check.name === 'upstream:resumes'), { name: 'upstream:resumes', ok: true }, '/readyz checks the microservice\'s TCP port')

    // ada's body and headers both claim bob as the owner: the service reads the envelope's verified identity.
    const created = await call(base, '/api/resumes', {
      method: 'POST',
      headers: { ...bearer(ada.access), 'x-user-id': bob.id },
      body: { title: 'Backend engineer', summary: 'Node.js', skills: ['TypeScript', 'NestJS'], ownerId: bob.id }
    })
    t.equal(created.status, 200)
    const resume = created.json as Resume
    t.match(resume, { id: String, title: 'Backend engineer', skills: ['TypeScript', 'NestJS'], version: 1, views: 0 })
    // The manifest's response schema: the service's internal fields never reach the client.
    t.same(Object.keys(resume).sort(), ['createdAt', 'id', 'skills', 'summary', 'title', 'updatedAt', 'version', 'views'], 'ownerId and internalNotes are shaped away')

    const list = await call(base, '/api/resumes', { headers: bearer(ada.access) })
    t.equal(list.status, 200)
    t.same(list.json, [resume], 'ada lists her resume')
    const one = await call(base, `/api/resumes/${resume.id}`, { headers: bearer(ada.access) })
    t.same([one.status, one.json], [200, resume], 'the same public shape')

    const notFound = { statusCode: 404, error: 'Not Found', message: 'resume not found' }
    const foreign = await call(base, `/api/resumes/${resume.id}`, { headers: bearer(bob.access) })
    t.equal(foreign.status, 404, 'bob cannot see ada\'s resume')
    t.match(foreign.json, notFound)
    const takeover = await call(base, `/api/resumes/${resume.id}`, { method: 'PATCH', headers: { ...bearer(bob.access), 'x-user-id': ada.id }, body: { title: 'mine now' } })
    t.equal(takeover.status, 404, 'nor change it, whatever x-user-id he sends')
    t.equal((await call(base, `/api/resumes/${resume.id}`, { method: 'DELETE', headers: bearer(bob.access) })).status, 404, 'nor delete it')
    t.same((await call(base, '/api/resumes', { headers: bearer(bob.access) })).json, [], 'bob\'s list is empty')

    const anonymous = await call(base, '/api/resumes')
    t.equal(anonymous.status, 401, 'no token: 401')
    t.equal(anonymous.headers['www-authenticate'], 'Bearer realm="tollgate"')
    const partner = await call(base, '/api/resumes', { headers: { 'x-api-key': PARTNER_KEY } })
    t.equal(partner.status, 401, 'the partner API key is not a credential here (JWT only)')

    const invalid = await call(base, '/api/resumes', { method: 'POST', headers: bearer(ada.access), body: { title: '', skills: 'TypeScript' } })
    t.equal(invalid.status, 400)
    t.match(invalid.json, { statusCode: 400, message: 'title must be a string of 1 to 200 characters; skills must be a list of at most 50 strings of 1 to 50 characters' }, 'the service\'s validation messages reach the client')

    const changed = await call(base, `/api/resumes/${resume.id}`, { method: 'PATCH', headers: bearer(ada.access), body: { summary: 'Node.js services', version: 1 } })
    t.equal(changed.status, 200)
    t.match(changed.json, { summary: 'Node.js services', version: 2 })
    const stale = await call(base, `/api/resumes/${resume.id}`, { method: 'PATCH', headers: bearer(ada.access), body: { summary: 'stale', version: 1 } })
    t.equal(stale.status, 409, 'a stale version is refused')

    const viewed = await call(base, `/api/resumes/${resume.id}/views`, { method: 'POST', headers: bearer(ada.access) })
    t.equal(viewed.status, 202, 'the event is accepted')
    t.equal(viewed.text, '')
    let views = 0
    for (let i = 0; i < 50 && views < 1; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 20))
      views = (((await call(base, `/api/resumes/${resume.id}`, { headers: bearer(ada.access) })).json) as Resume).views
    }
    t.equal(views, 1, 'the resume_viewed event reached the service')

    const deleted = await call(base, `/api/resumes/${resume.id}`, { method: 'DELETE', headers: bearer(ada.access) })
    t.equal(deleted.status, 204, 'delete answers nothing: 204')
    t.equal((await call(base, `/api/resumes/${resume.id}`, { headers: bearer(ada.access) })).status, 404, 'gone')
  })

  await t.test('Socket.io through the gateway: two users join a meeting and exchange messages; the cap holds', async (t) => {
    const sockets: Socket[] = []
    t.teardown(() => { for (const socket of sockets) socket.close() })
    const meeting = await call(base, '/api/meetings', { method: 'POST', headers: { ...bearer(ada.access), 'x-user-id': bob.id }, body: { title: 'standup', maxParticipants: 2 } })
    t.equal(meeting.status, 201)
    const meetingId = (meeting.json as { id: string }).id
    t.match(meeting.json, { ownerId: ada.id }, 'the meeting belongs to the token\'s user')

    const adaSocket = chatClient(base, bearer(ada.access))
    // bob also sends a spoofed identity header: the gateway replaces it on the upgrade.
    const bobSocket = chatClient(base, { ...bearer(bob.access), 'x-user-id': ada.id })
    sockets.push(adaSocket, bobSocket)
    await Promise.all([connected(adaSocket), connected(bobSocket)])

    t.match(await adaSocket.emitWithAck('meeting:join', meetingId), { ok: true, participants: [ada.id] })
    const bobJoined = nextEvent<{ userId: string }>(adaSocket, 'meeting:joined')
    const bobAck: unknown = await bobSocket.emitWithAck('meeting:join', meetingId)
    t.match(bobAck, { ok: true })
    t.same(new Set((bobAck as { participants: string[] }).participants), new Set([ada.id, bob.id]))
    t.same(await bobJoined, { meetingId, userId: bob.id }, 'ada sees bob (his token\'s id) join')

    const toAda = nextEvent<{ from: string, text: string }>(adaSocket, 'chat:message', (m) => m.text === 'hi ada')
    t.match(await bobSocket.emitWithAck('chat:message', { meetingId, text: 'hi ada' }), { ok: true })
    t.match(await toAda, { meetingId, from: bob.id, text: 'hi ada' }, 'bob\'s message reaches ada, from bob')
    const toBob = nextEvent<{ from: string, text: string }>(bobSocket, 'chat:message', (m) => m.text === 'hi bob')
    t.match(await adaSocket.emitWithAck('chat:message', { meetingId, text: 'hi bob' }), { ok: true })
    t.match(await toBob, { meetingId, from: ada.id, text: 'hi bob' }, 'and the other way')

    const bossSocket = chatClient(base, bearer(boss.access))
    sockets.push(bossSocket)
    await connected(bossSocket)
    t.match(await bossSocket.emitWithAck('meeting:join', meetingId), { ok: false, code: 'MEETING_FULL' }, 'a third user is refused by the cap of 2')

    const view = await call(base, `/api/meetings/${meetingId}`, { headers: bearer(boss.access) })
    t.equal(view.status, 200)
    t.same(new Set((view.json as { participants: string[] }).participants), new Set([ada.id, bob.id]))
  })

  await t.test('a WebSocket upgrade without a valid token is refused by the gateway', async (t) => {
    const path = '/api/meetings/socket.io/?EIO=4&transport=websocket'
    const none = await upgrade(base, path)
    t.equal(none.status, 401, 'no token: 401, not 101')
    t.equal(none.headers['www-authenticate'], 'Bearer realm="tollgate"')
    const spoofed = await upgrade(base, path, { 'x-user-id': ada.id })
    t.equal(spoofed.status, 401, 'an x-user-id header is not a credential')
    const bad = await upgrade(base, path, { authorization: 'Bearer not.a.token' })
    t.equal(bad.status, 401, 'a bad token: 401')
    t.match(bad.headers['www-authenticate'], /error="invalid_token"/)

    const anonymous = chatClient(base, {})
    t.teardown(() => { anonymous.close() })
    await t.rejects(connected(anonymous), 'socket.io-client without a token cannot connect')
  })

  await t.test('refresh rotates the refresh token; after logout, neither the new nor the old one is accepted', async (t) => {
    const refreshed = await call(base, '/api/auth/refresh', { method: 'POST', body: { refreshToken: ada.refresh }, from: ada.from })
    t.equal(refreshed.status, 200)
    const next = refreshed.json as { accessToken: string, refreshToken: string }
    t.not(next.refreshToken, ada.refresh, 'a new refresh token')
    const withNew = await call(base, '/api/posts', { headers: bearer(next.accessToken) })
    t.equal(withNew.status, 200, 'the new access token works through the gateway')

    const logout = await call(base, '/api/auth/logout', { method: 'POST', body: { refreshToken: next.refreshToken }, from: ada.from })
    t.equal(logout.status, 204)
    const afterLogout = await call(base, '/api/auth/refresh', { method: 'POST', body: { refreshToken: next.refreshToken }, from: ada.from })
    t.equal(afterLogout.status, 401, 'the logged-out refresh token is refused')
    const old = await call(base, '/api/auth/refresh', { method: 'POST', body: { refreshToken: ada.refresh }, from: ada.from })
    t.equal(old.status, 401, 'the old (rotated) refresh token is refused')
  })

  await t.test('the login limiter: 10 requests a minute per IP, then 429 with Retry-After', async (t) => {
    const from = '127.0.0.20'
    const login = (source: string): Promise<Answer> => call(base, '/api/auth/login', { method: 'POST', body: { email: 'nobody@example.com', password: 'guessing-1234' }, from: source })
    const remaining: string[] = []
    for (let i = 0; i < 10; i++) {
      const answer = await login(from)
      t.equal(answer.status, 401, `attempt ${i + 1} reaches the auth service`)
      t.equal(answer.headers['ratelimit-limit'], '10')
      remaining.push(String(answer.headers['ratelimit-remaining']))
    }
    t.same(remaining, ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0'])
    const limited = await login(from)
    t.equal(limited.status, 429, 'the 11th request in the minute is refused')
    t.match(limited.headers['retry-after'], /^\d+$/, 'Retry-After in delta-seconds')
    const retryAfter = Number(limited.headers['retry-after'])
    // Sliding window (the manifest's algorithm): the next admission can come up to W/max after
    // the window ends, when the limit was reached early in it (see @tollgate/rate-limit's README).
    t.ok(retryAfter >= 1 && retryAfter <= 66, `Retry-After ${retryAfter} is at most the window plus one request's share of it`)
    t.equal(limited.headers['ratelimit-remaining'], '0')
    t.match(limited.json, { statusCode: 429, error: 'Too Many Requests' })
    t.equal((await login('127.0.0.21')).status, 401, 'another IP has its own budget')
  })
}

t.test('the reference deployment (in-memory manifest), driven through the gateway', async (t) => {
  const base = await startDeployment(t)
  await clientFlow(t, base)
})

t.test('the same flow with tollgate.redis.yaml: rate-limit state lives in Redis under the manifest\'s keyPrefix', async (t) => {
  const prefix = `tollgate:e2e:${randomUUID()}:`
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  const keys = async (): Promise<string[]> => {
    const found: string[] = []
    let cursor = '0'
    for (let i = 0; i < 1000; i++) {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      found.push(...batch)
      cursor = next
      if (cursor === '0') break
    }
    return found
  }
  t.teardown(async () => {
    const mine = await keys()
    if (mine.length > 0) await redis.del(...mine)
    redis.disconnect()
  })
  t.same(await keys(), [], 'a fresh prefix')

  const base = await startDeployment(t, { REDIS_URL, REDIS_KEY_PREFIX: prefix })
  const ready = await call(base, '/readyz')
  t.equal(ready.status, 200, 'ready, Redis included')
  await clientFlow(t, base)

  const stored = await keys()
  t.ok(stored.length > 0, `rate-limit keys under ${prefix} are in Redis (${stored.length})`)
  t.ok(stored.every((key) => key.startsWith(prefix)))
  // Only these tests' keys are deleted (teardown), never anything else in the shared Redis.
})
