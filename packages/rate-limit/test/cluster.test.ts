import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { cleanupOnTeardown, connectRedis, uniquePrefix } from './helpers/redis.js'

const INSTANCE = fileURLToPath(new URL('./fixtures/instance.ts', import.meta.url))
const INSTANCES = 3

interface Started { ports: number[], children: ChildProcess[] }

/** Forks `INSTANCES` gateway processes sharing one Redis prefix; each answers with its port once Redis is ready. */
async function startInstances (t: Test, env: Record<string, string>): Promise<Started> {
  const children: ChildProcess[] = []
  t.teardown(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit')
        const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
        if (child.connected) child.send('close')
        else child.kill('SIGKILL')
        await exited
        clearTimeout(timer)
      }
    }
  })
  const ports = await Promise.all(Array.from({ length: INSTANCES }, async () => {
    const child = fork(INSTANCE, { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(child)
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 30_000)
    const [message] = await Promise.race([
      once(child, 'message') as Promise<[{ ready: boolean, port: number }]>,
      once(child, 'exit').then(([code]) => { throw new Error(`instance exited with ${String(code)} before listening`) })
    ])
    clearTimeout(timer)
    t.ok(message.ready, 'the instance reached Redis')
    return message.port
  }))
  return { ports, children }
}

const cases = [
  { algorithm: 'fixed-window', window: '1h' },
  { algorithm: 'token-bucket', window: '1h' },
  // A fresh bucket has no previous sub-window to weigh, so the counter is exact here too;
  // the README states its tolerance when the previous sub-window was busy.
  { algorithm: 'sliding-window', window: '1h' }
]

for (const { algorithm, window } of cases) {
  t.test(`${algorithm}: ${INSTANCES} instances in separate processes sharing Redis admit exactly max in a concurrent burst`, async (t) => {
    await connectRedis(t) // fails the test (never skips it) when Redis is not reachable
    const prefix = uniquePrefix(`cluster-${algorithm}`)
    cleanupOnTeardown(t, prefix)
    const max = 25
    const { ports } = await startInstances(t, { ALGORITHM: algorithm, PREFIX: prefix, MAX: String(max), WINDOW: window })
    // Warm each process up (loader, JIT, sockets) on an unlimited route first.
    for (const port of ports) await (await fetch(`http://127.0.0.1:${port}/warm`)).arrayBuffer()
    const perInstance = 30
    const requests = ports.flatMap((port) => Array.from({ length: perInstance }, async () => {
      const response = await fetch(`http://127.0.0.1:${port}/burst`)
      await response.arrayBuffer()
      return { port, status: response.status }
    }))
    const results = await Promise.all(requests)
    const admitted = results.filter((r) => r.status === 200)
    const refused = results.filter((r) => r.status === 429)
    t.equal(results.filter((r) => r.status === 503).length, 0, 'no store error during the burst')
    t.equal(admitted.length, max, `exactly ${max} of ${results.length} admitted in total`)
    t.equal(refused.length, results.length - max, 'every other request refused with 429')
    t.ok(new Set(admitted.map((r) => r.port)).size > 1, 'admissions came through more than one instance')
  })
}
