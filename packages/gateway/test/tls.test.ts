import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import selfsigned from 'selfsigned'
import { Agent, request } from 'undici'
import { createServer } from 'node:net'
import { createPrivateKey } from 'node:crypto'
import { manifestProblems } from '../src/manifest/validate.js'
import type { Manifest } from '../src/manifest/types.js'
import { createGateway, loadManifest, serveUntilSignal } from '../src/index.js'
import { startGateway } from './helpers/hostile.js'
import { echoUpstream, waitFor } from './helpers/upstream.js'

t.test('server.tls terminates HTTPS, and redirectHttpPort answers 308 to the https URL', async (t) => {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }]
  })
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tls-'))
  writeFileSync(join(dir, 'gateway.crt'), pems.cert)
  writeFileSync(join(dir, 'gateway.key'), pems.private)
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const file = join(dir, 'tollgate.yaml')
  writeFileSync(file, `
version: 1
server:
  tls: { cert: ./gateway.crt, key: ./gateway.key, redirectHttpPort: 0 }
upstreams:
  echo: { targets: ["${upstream.url}"] }
routes:
  - { prefix: /api, upstream: echo, auth: false }
`)
  const { app, logs } = await startGateway(t, await loadManifest(file))
  const httpsPort = (app.server.address() as { port: number }).port

  const agent = new Agent({ connect: { ca: pems.cert } })
  t.teardown(() => agent.close())
  const response = await request(`https://127.0.0.1:${httpsPort}/api/x?y=1`, { dispatcher: agent })
  t.equal(response.statusCode, 200)
  t.match(await response.body.json(), { url: '/x?y=1' })
  t.equal(upstream.seen[0]?.headers['x-forwarded-proto'], 'https', 'the upstream learns the client used https')

  await waitFor(() => logs.some((line) => line.msg === 'redirecting plain HTTP to HTTPS'))
  const redirectPort = logs.find((line) => line.msg === 'redirecting plain HTTP to HTTPS')!.port as number
  const redirect = await new Promise<{ status: number | undefined, location: string | undefined }>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: redirectPort, path: '/api/x?y=1', headers: { host: 'localhost' } }, (res) => {
      res.resume()
      resolve({ status: res.statusCode, location: res.headers.location })
    }).on('error', reject).end()
  })
  t.equal(redirect.status, 308)
  t.equal(redirect.location, `https://localhost:${httpsPort}/api/x?y=1`)
  t.equal(upstream.seen.length, 1, 'the plain-HTTP request reached no upstream')
})

t.test('a redirect listener that cannot listen stops the gateway instead of leaving it half started', async (t) => {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { algorithm: 'sha256' })
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tls-'))
  writeFileSync(join(dir, 'gateway.crt'), pems.cert)
  writeFileSync(join(dir, 'gateway.key'), pems.private)
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => { resolve() })))
  const takenPort = (taken.address() as { port: number }).port
  const file = join(dir, 'tollgate.yaml')
  writeFileSync(file, `
version: 1
server:
  host: 127.0.0.1
  port: 0
  tls: { cert: ./gateway.crt, key: ./gateway.key, redirectHttpPort: ${takenPort} }
upstreams:
  echo: { targets: ["http://127.0.0.1:9"] }
routes:
  - { prefix: /api, upstream: echo, auth: false }
`)
  const manifest = await loadManifest(file)
  const app = await createGateway(manifest, { logLevel: 'silent' })
  await t.rejects(serveUntilSignal(app, manifest), { message: `server.tls.redirectHttpPort: cannot listen on 127.0.0.1:${takenPort} (EADDRINUSE)` })
  t.notOk(app.server.listening, 'the HTTPS listener is closed again')
})

t.test('upstreams.<name>.ca trusts a private CA for https targets; without it their certificate is refused', async (t) => {
  const pems = await selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }]
  })
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ca-'))
  writeFileSync(join(dir, 'internal-ca.pem'), pems.cert)
  const internal = createHttpsServer({ cert: pems.cert, key: pems.private }, (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"internal":true}')
  })
  await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { internal.closeAllConnections(); internal.close(() => { resolve() }) }))
  const target = `https://127.0.0.1:${(internal.address() as { port: number }).port}`
  const file = join(dir, 'tollgate.yaml')
  writeFileSync(file, `
version: 1
upstreams:
  trusted: { targets: ["${target}"], ca: ./internal-ca.pem, bodyTimeout: 30s, keepAliveTimeout: 2s, connections: 8 }
  untrusted: { targets: ["${target}"] }
routes:
  - { prefix: /trusted, upstream: trusted, auth: false }
  - { prefix: /untrusted, upstream: untrusted, auth: false }
`)
  const { base } = await startGateway(t, await loadManifest(file))
  const trusted = await request(`${base}/trusted/x`)
  t.equal(trusted.statusCode, 200)
  t.same(await trusted.body.json(), { internal: true })
  const untrusted = await request(`${base}/untrusted/x`)
  t.equal(untrusted.statusCode, 502, 'a certificate no trusted CA signed')
  await untrusted.body.dump()

  writeFileSync(file, `
version: 1
upstreams:
  plain: { targets: [http://127.0.0.1:3001], ca: ./missing.pem }
routes:
  - { prefix: /p, upstream: plain, auth: false }
`)
  const refused = await loadManifest(file).then(() => undefined, (error: unknown) => error as { problems?: string[] })
  t.same(refused?.problems, ['upstreams.plain.ca: cannot read ./missing.pem (ENOENT)', 'upstreams.plain.ca: only https targets use a CA, and this upstream has none'])
})

t.test('TLS files that do not read as a certificate and its key are named by their manifest path', async (t) => {
  const first = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { algorithm: 'sha256' })
  const second = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { algorithm: 'sha256' })
  const encrypted = createPrivateKey(first.private).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tls-'))
  const files = { 'a.crt': first.cert, 'a.key': first.private, 'b.key': second.private, 'encrypted.key': encrypted as string }
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  const problemsWith = (cert: string, key: string): string[] => manifestProblems({
    version: 1,
    server: { tls: { cert, key } },
    upstreams: { echo: { targets: ['http://127.0.0.1:9'] } },
    routes: [{ prefix: '/api', upstream: 'echo', auth: false }]
  } as Manifest, dir)
  t.same(problemsWith('./a.crt', './a.key'), [], 'a certificate and its own key pass')
  t.same(problemsWith('./a.key', './a.key'), ['server.tls.cert: not a PEM certificate'], 'a key given as the certificate')
  t.same(problemsWith('./a.crt', './a.crt'), ['server.tls.key: not a PEM private key'], 'a certificate given as the key')
  t.same(problemsWith('./a.crt', './b.key'), ['server.tls.key: does not match server.tls.cert'], 'another certificate\'s key')
  t.match(problemsWith('./a.crt', './encrypted.key'), [/^server\.tls\.key: the private key is encrypted/])
})
