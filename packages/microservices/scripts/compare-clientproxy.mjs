// Bounded latency comparison: @nestjs/microservices' ClientTCP vs our TcpClient, against
// the test fixture (a real NestJS TCP microservice). `node scripts/compare-clientproxy.mjs`
// after `pnpm exec tsc -b`. Prints median and p99 per call, sequential and 50 concurrent.
/* global process, console, setTimeout, URL, performance */
import 'reflect-metadata'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ClientProxyFactory, Transport } from '@nestjs/microservices'
import { firstValueFrom } from 'rxjs'
import { TcpClient } from '../dist/transport/tcp.js'

const N = Number(process.env.N ?? 2000)
const port = 39000 + Math.floor(Math.random() * 500)
const child = spawn(process.execPath, [fileURLToPath(new URL('../test/fixtures/service.mjs', import.meta.url))], {
  env: { ...process.env, SERVICE: JSON.stringify({ transport: 'tcp', port, ns: '' }) }, stdio: ['ignore', 'pipe', 'inherit']
})
await new Promise((resolve) => child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve() }))

const nest = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port } })
await nest.connect()
const own = new TcpClient({ targets: [`tcp://127.0.0.1:${port}`], connectTimeout: 5000 })
const clients = {
  'ClientTCP (@nestjs/microservices)': (i) => firstValueFrom(nest.send('get_user', { id: String(i) })),
  'TcpClient (@tollgate/microservices)': (i) => own.send('get_user', { id: String(i) }, 10_000)
}
const stats = (samples) => {
  samples.sort((a, b) => a - b)
  return `median ${samples[Math.floor(samples.length / 2)].toFixed(3)} ms, p99 ${samples[Math.floor(samples.length * 0.99)].toFixed(3)} ms`
}
for (let round = 0; round < 2; round++) {
  for (const [name, call] of Object.entries(clients)) {
    for (let i = 0; i < 200; i++) await call(i) // warm-up
    const sequential = []
    for (let i = 0; i < N; i++) { const t0 = performance.now(); await call(i); sequential.push(performance.now() - t0) }
    const concurrent = []
    const t1 = performance.now()
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async (_, j) => { const t0 = performance.now(); await call(i + j); concurrent.push(performance.now() - t0) }))
    }
    const rate = (N / ((performance.now() - t1) / 1000)).toFixed(0)
    if (round === 1) console.log(`${name}: sequential ${stats(sequential)}; 50 concurrent ${stats(concurrent)}, ${rate} req/s`)
  }
}
await nest.close()
await own.close()
child.kill('SIGKILL')
setTimeout(() => process.exit(0), 100)
