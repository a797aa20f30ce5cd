/* global process */
// The gateway of the idle-WebSockets measurement, in its own process so that its RSS is
// its own: one public route with `websocket: true` to BENCH_WS_UPSTREAM. Reports
// { type: 'ready', port } over IPC; answers { type: 'gc' } with { type: 'gc-done', heapUsed }
// after a full collection (run with --expose-gc), so both samples are taken on a settled heap.
const { createGateway } = await import('@tollgate/gateway')
const app = await createGateway({
  version: 1,
  server: { host: '127.0.0.1', port: 0, logLevel: 'warn', docs: false },
  upstreams: { chat: { targets: [process.env.BENCH_WS_UPSTREAM] } },
  routes: [{ prefix: '/ws', upstream: 'chat', websocket: true, auth: false, rateLimit: false }]
})
await app.listen({ host: '127.0.0.1', port: 0 })
process.on('message', (message) => {
  if (message?.type === 'gc') {
    globalThis.gc?.()
    process.send({ type: 'gc-done', heapUsed: process.memoryUsage().heapUsed })
  } else if (message?.type === 'stop') {
    void app.close().then(() => process.exit(0))
  }
})
process.on('disconnect', () => { process.exit(0) })
process.send({ type: 'ready', port: app.server.address().port })
