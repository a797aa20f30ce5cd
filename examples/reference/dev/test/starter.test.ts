import { createServer } from 'node:net'
import t from 'tap'
import { ensureBuilt, freePorts, runStarter } from './helpers/starter.js'

ensureBuilt()

t.test('without the gateway CLI the starter fails at once with a clear message, starting nothing', async (t) => {
  const run = runStarter([], { TOLLGATE_CLI: '/nonexistent/packages/gateway/dist/cli.js' })
  t.teardown(() => { run.child.kill('SIGKILL') })
  t.equal(await run.exit, 1)
  t.match(run.output(), /gateway CLI \(\/nonexistent\/packages\/gateway\/dist\/cli\.js\) is missing: build it with `pnpm run build`/)
  t.notMatch(run.output(), /\[auth\]/, 'no service was started')
})

t.test('--services-only starts the services, waits for their health, and stops them all on SIGTERM with exit 0', async (t) => {
  const [auth, postsA, postsB, chat] = await freePorts(4)
  const run = runStarter(['--services-only'], { AUTH_PORT: String(auth), POSTS_A_PORT: String(postsA), POSTS_B_PORT: String(postsB), CHAT_PORT: String(chat) })
  t.teardown(() => { run.child.kill('SIGKILL') })
  await run.ready(60_000)
  const health = async (port: number): Promise<unknown> => await (await fetch(`http://127.0.0.1:${port}/health`)).json()
  t.match(await health(auth!), { status: 'ok', store: 'memory' })
  t.same(await health(postsA!), { status: 'ok', instance: 'posts-a' })
  t.same(await health(postsB!), { status: 'ok', instance: 'posts-b' })
  t.match(await health(chat!), { status: 'ok' })

  run.child.kill('SIGTERM')
  t.equal(await run.exit, 0)
  t.match(run.output(), /All stopped\./)
  for (const port of [auth, postsA, postsB, chat]) {
    await t.rejects(fetch(`http://127.0.0.1:${port!}/health`), `port ${port!} is closed`)
  }
})

t.test('a service that cannot start stops the others and fails the starter', async (t) => {
  const [auth, postsA, postsB, chat] = await freePorts(4)
  // The auth port is taken (by a listener that never answers HTTP): auth cannot listen and exits.
  const squatter = createServer((socket) => { socket.destroy() })
  await new Promise<void>((resolve) => squatter.listen(auth, '127.0.0.1', resolve))
  t.teardown(() => { squatter.close() })
  const run = runStarter(['--services-only'], { AUTH_PORT: String(auth), POSTS_A_PORT: String(postsA), POSTS_B_PORT: String(postsB), CHAT_PORT: String(chat) })
  t.teardown(() => { run.child.kill('SIGKILL') })
  t.equal(await run.exit, 1)
  t.match(run.output(), /auth exited \(code 1\) before it was ready/)
  t.match(run.output(), /All stopped\./)
  await t.rejects(fetch(`http://127.0.0.1:${chat!}/health`), 'the others were stopped')
})
