import t from 'tap'
import { createServer } from 'node:net'
import { build, sample } from './helpers/app.js'

async function get (url: string, method = 'GET'): Promise<{ status: number, body: string, type: string | null }> {
  const res = await fetch(url, { method, headers: { connection: 'close' } })
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') }
}

t.test('metrics can be served on a separate internal listener, closed with the app', async (t) => {
  const { app, logs } = build(t, { port: 0 })
  app.get('/hello', async () => 'hi')
  await app.ready()
  const address = app.tollgateMetrics.address()
  t.ok(address !== null, 'bound at ready')
  t.equal(address!.address, '127.0.0.1', 'on loopback by default')
  t.ok(address!.port > 0)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const appPort = (app.server.address() as { port: number }).port
  t.not(appPort, address!.port)

  t.equal((await get(`http://127.0.0.1:${appPort}/hello`)).body, 'hi')
  t.equal((await get(`http://127.0.0.1:${appPort}/metrics`)).status, 404, 'not on the app')

  const metrics = await get(`http://127.0.0.1:${address!.port}/metrics?x=1`)
  t.equal(metrics.status, 200)
  t.match(metrics.type, /^text\/plain/)
  t.equal(sample(metrics.body, 'tollgate_requests_total', { route: '/hello', method: 'GET', status: '200' }), 1)
  t.equal(sample(metrics.body, 'tollgate_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 1)
  t.match(metrics.body, /^# TYPE tollgate_store_errors_total counter$/m)

  const head = await get(`http://127.0.0.1:${address!.port}/metrics`, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal((await get(`http://127.0.0.1:${address!.port}/other`)).status, 404)
  t.equal((await get(`http://127.0.0.1:${address!.port}/metrics`, 'POST')).status, 405)
  t.ok(logs.lines.some((line) => line.msg === 'metrics listening' && line.port === address!.port), 'the bound address is logged')

  await app.close()
  t.equal(app.tollgateMetrics.address(), null)
  await t.rejects(fetch(`http://127.0.0.1:${address!.port}/metrics`), 'the listener is closed with the app')
})

t.test('a port that is taken fails app.ready() with a clear error', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => { blocker.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as { port: number }).port
  const { app } = build(t, { port })
  await t.rejects(async () => { await app.ready() }, { code: 'TOLLGATE_METRICS_LISTEN_FAILED', message: new RegExp(`127\\.0\\.0\\.1:${port}`) })
})
