import { createServer } from 'node:net'
import t, { type Test } from 'tap'
import { acceptsConnections, ensureBuilt, freePorts, runStarter } from './helpers/starter.js'

ensureBuilt()

/** Five free ports for the services, and the starter's environment naming them. */
async function servicePorts (): Promise<{ auth: number, postsA: number, postsB: number, chat: number, resumes: number, env: Record<string, string> }> {
  const [auth, postsA, postsB, chat, resumes] = (await freePorts(5)) as [number, number, number, number, number]
  return { auth, postsA, postsB, chat, resumes, env: { AUTH_PORT: String(auth), POSTS_A_PORT: String(postsA), POSTS_B_PORT: String(postsB), CHAT_PORT: String(chat), RESUMES_PORT: String(resumes) } }
}

/** Holds `port` until the test ends with a listener that drops every connection (it never answers HTTP). */
async function squat (t: Test, port: number): Promise<void> {
  const squatter = createServer((socket) => { socket.destroy() })
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve))
  t.teardown(() => { squatter.close() })
}

t.test('without the gateway CLI the starter fails at once with a clear message, starting nothing', async (t) => {
  const run = runStarter([], { TOLLGATE_CLI: '/nonexistent/packages/gateway/dist/cli.js' })
  t.teardown(() => { run.child.kill('SIGKILL') })
  t.equal(await run.exit, 1)
  t.match(run.output(), /gateway CLI \(\/nonexistent\/packages\/gateway\/dist\/cli\.js\) is missing: build it with `pnpm run build`/)
  t.notMatch(run.output(), /\[auth\]/, 'no service was started')
})

t.test('--services-only starts the services, waits for their health, and stops them all on SIGTERM with exit 0', async (t) => {
  const { auth, postsA, postsB, chat, resumes, env } = await servicePorts()
  const run = runStarter(['--services-only'], env)
  t.teardown(() => { run.child.kill('SIGKILL') })
  await run.ready(60_000)
  const health = async (port: number): Promise<unknown> => await (await fetch(`http://127.0.0.1:${port}/health`)).json()
  t.match(await health(auth), { status: 'ok', store: 'memory' })
  t.same(await health(postsA), { status: 'ok', instance: 'posts-a' })
  t.same(await health(postsB), { status: 'ok', instance: 'posts-b' })
  t.match(await health(chat), { status: 'ok' })
  // The resumes service is a NestJS TCP microservice: no HTTP; ready means its port accepts connections.
  t.ok(await acceptsConnections(resumes), 'the resumes service accepts TCP connections')
  t.match(run.output(), new RegExp(`resumes tcp://127\\.0\\.0\\.1:${resumes} \\(NestJS, TCP\\)`))

  run.child.kill('SIGTERM')
  t.equal(await run.exit, 0)
  t.match(run.output(), /All stopped\./)
  for (const port of [auth, postsA, postsB, chat]) {
    await t.rejects(fetch(`http://127.0.0.1:${port}/health`), `port ${port} is closed`)
  }
  t.notOk(await acceptsConnections(resumes), `port ${resumes} is closed`)
})

t.test('a TCP service that cannot listen fails the starter by name, and the others are stopped', async (t) => {
  const { auth, resumes, env } = await servicePorts()
  // Something else holds the resumes port: NestJS cannot listen and the service exits 1.
  await squat(t, resumes)
  const run = runStarter(['--services-only'], env)
  t.teardown(() => { run.child.kill('SIGKILL') })
  t.equal(await run.exit, 1)
  t.match(run.output(), /\[resumes\] cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/)
  // The squatter accepts connections, so the TCP probe may pass before the service exits: either way the starter fails.
  t.match(run.output(), /resumes exited (\(code 1\) before it was ready|unexpectedly \(code 1\))/)
  t.match(run.output(), /All stopped\./)
  await t.rejects(fetch(`http://127.0.0.1:${auth}/health`), 'the others were stopped')
})

t.test('a service that cannot start stops the others and fails the starter', async (t) => {
  const { auth, chat, env } = await servicePorts()
  // The auth port is taken (by a listener that never answers HTTP): auth cannot listen and exits.
  await squat(t, auth)
  const run = runStarter(['--services-only'], env)
  t.teardown(() => { run.child.kill('SIGKILL') })
  t.equal(await run.exit, 1)
  t.match(run.output(), /auth exited \(code 1\) before it was ready/)
  t.match(run.output(), /All stopped\./)
  await t.rejects(fetch(`http://127.0.0.1:${chat}/health`), 'the others were stopped')
})
