// A 100 MB response to a client that stops reading: the gateway must pass the
// backpressure on to the upstream instead of buffering the body in memory.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { gateway, listen, upstream } from './helpers/servers.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const TOTAL = 100 * 1024 * 1024
const CHUNK = Buffer.alloc(64 * 1024, 0x61)
const MB = 1024 * 1024

function memory (): { rss: number, arrayBuffers: number } {
  const { rss, arrayBuffers } = process.memoryUsage()
  return { rss, arrayBuffers }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

t.test('a slow reader of a 100 MB response blocks the upstream; gateway memory stays bounded', async (t) => {
  const state = { written: 0, waitingForDrain: false, drains: 0, finished: false }
  const big = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) })
    const pump = (): void => {
      state.waitingForDrain = false
      while (state.written < TOTAL) {
        state.written += CHUNK.length
        if (!res.write(CHUNK)) {
          state.waitingForDrain = true
          res.once('drain', () => { state.drains++; pump() })
          return
        }
      }
      res.end()
      state.finished = true
    }
    pump()
  })
  const app = await gateway(t, { upstreams: { big: { targets: [big.url] } }, routes: [{ prefix: '/big', upstream: 'big' }] })
  const base = await listen(app)

  // Warm the path up so the baseline includes the gateway's steady-state allocations.
  const warm = await app.inject({ url: '/big/warm', method: 'HEAD' })
  t.equal(warm.statusCode, 200)
  state.written = 0
  state.finished = false
  gc()
  const baseline = memory()

  const client: Socket = connect(Number(new URL(base).port), '127.0.0.1')
  t.teardown(() => { client.destroy() })
  let received = 0
  let slow = true
  client.on('data', (chunk: Buffer) => {
    received += chunk.length
    // Read the first megabyte, then stop reading altogether.
    if (slow && received >= MB) client.pause()
  })
  const ended = new Promise<void>((resolve) => client.on('end', resolve))
  client.write('GET /big/file HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n')

  // Wait (at most 600 x 50 ms) until the upstream is stuck on backpressure: waiting for
  // 'drain' with nothing written for 10 consecutive polls.
  let peak = { rss: 0, arrayBuffers: 0 }
  let still = 0
  let last = -1
  for (let i = 0; i < 600 && still < 10 && !state.finished; i++) {
    await sleep(50)
    const now = memory()
    peak = { rss: Math.max(peak.rss, now.rss), arrayBuffers: Math.max(peak.arrayBuffers, now.arrayBuffers) }
    if (state.waitingForDrain && state.written === last) still++
    else still = 0
    last = state.written
  }
  t.equal(state.finished, false, 'the upstream could not write the whole body')
  t.equal(state.waitingForDrain, true, 'the upstream is waiting for drain')
  t.ok(state.written < TOTAL / 2, `the upstream is held back (${(state.written / MB).toFixed(1)} MB written)`)
  t.ok(received < 16 * MB, `the client really stopped reading (${(received / MB).toFixed(1)} MB read)`)
  gc()
  const during = memory()
  peak = { rss: Math.max(peak.rss, during.rss), arrayBuffers: Math.max(peak.arrayBuffers, during.arrayBuffers) }
  const rssGrowth = (peak.rss - baseline.rss) / MB
  const bufferGrowth = (peak.arrayBuffers - baseline.arrayBuffers) / MB
  t.ok(rssGrowth < 32, `peak RSS growth ${rssGrowth.toFixed(1)} MB < 32 MB`)
  t.ok(bufferGrowth < 32, `peak ArrayBuffer growth ${bufferGrowth.toFixed(1)} MB < 32 MB`)

  // Then read the rest at full speed: every byte arrives, the upstream finishes.
  slow = false
  client.resume()
  await ended
  t.ok(received > TOTAL, 'the whole body reached the client')
  const headerBytes = received - TOTAL
  t.ok(headerBytes > 0 && headerBytes < 2048, `only the head besides the body (${headerBytes} bytes)`)
  t.equal(state.finished, true)
  t.ok(state.drains > 0)
})
