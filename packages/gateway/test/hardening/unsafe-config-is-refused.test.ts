import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { createGateway, type Manifest } from '../../src/index.js'
import { exchange, startGateway } from '../helpers/hostile.js'

/*
 * Config safety: settings that quietly remove a protection are refused at startup
 * (validate and start exit 1 naming the key), or accepted only behind an explicit
 * `insecure...` flag with a warning in the log.
 */

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

function tollgate (args: string[]): { status: number | null, stdout: string, stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

function manifestFile (text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tollgate-hardening-')), 'tollgate.yaml')
  writeFileSync(file, text)
  return file
}

const jwtManifest = (jwt: string): string => `
version: 1
auth:
  jwt:
${jwt}
upstreams:
  main: { targets: [http://127.0.0.1:9] }
routes:
  - { prefix: /api, upstream: main }
`

t.test('an HMAC secret under 32 bytes is refused by validate and start, naming auth.jwt.secret', async (t) => {
  const file = manifestFile(jwtManifest('    secret: only-24-bytes-of-secret!\n    algorithms: [HS256]'))
  for (const command of ['validate', 'start']) {
    const result = tollgate([command, '--config', file])
    t.equal(result.status, 1, `${command} exits 1`)
    t.match(result.stderr, /^auth\.jwt\.secret: must be at least 32 bytes/m, `${command}: the problem names its manifest path`)
    t.notMatch(result.stderr, /\n\s+at /, `${command}: no stack trace`)
    t.notMatch(result.stderr + result.stdout, /only-24-bytes/, `${command}: the secret is not printed`)
  }
})

t.test('a weak secret is accepted only with auth.jwt.insecureWeakSecret: true, and then with a warning', async (t) => {
  const file = manifestFile(jwtManifest('    secret: only-24-bytes-of-secret!\n    algorithms: [HS256]\n    insecureWeakSecret: true'))
  t.equal(tollgate(['validate', '--config', file]).status, 0)
  const manifest: Manifest = {
    version: 1,
    auth: { jwt: { secret: 'only-24-bytes-of-secret!', algorithms: ['HS256'], insecureWeakSecret: true } },
    upstreams: { main: { targets: ['http://127.0.0.1:9'] } },
    routes: [{ prefix: '/api', upstream: 'main' }]
  }
  const { logs } = await startGateway(t, manifest)
  const warning = logs.find((line) => line.level === 40 && /insecureWeakSecret/.test(String(line.msg)))
  t.ok(warning, 'a warning at startup names the flag')
  t.notMatch(JSON.stringify(logs), /only-24-bytes/, 'the secret is never logged')
})

t.test('"none" in auth.jwt.algorithms is refused in any casing', async (t) => {
  for (const none of ['none', 'NONE', 'None']) {
    const result = tollgate(['validate', '--config', manifestFile(jwtManifest(`    secret: ${'s'.repeat(40)}\n    algorithms: [HS256, ${none}]`))])
    t.equal(result.status, 1, `${none}: refused`)
    t.match(result.stderr, /^auth\.jwt\.algorithms\[1\]: /m, `${none}: the problem names the list entry`)
  }
})

t.test('server.trustProxy: true logs a startup warning; the default does not', async (t) => {
  const base: Manifest = { version: 1, upstreams: { main: { targets: ['http://127.0.0.1:9'] } }, routes: [{ prefix: '/api', upstream: 'main', auth: false }] }
  const trusting = await startGateway(t, { ...base, server: { trustProxy: true } })
  t.ok(trusting.logs.some((line) => line.level === 40 && /trustProxy is true/.test(String(line.msg))), 'warned')
  const strict = await startGateway(t, base)
  t.notOk(strict.logs.some((line) => /trustProxy/.test(String(line.msg))), 'no warning by default')
})

t.test('upstream TLS certificates are always verified: no manifest key turns it off, and a self-signed upstream gets 502', async (t) => {
  for (const key of ['rejectUnauthorized: false', 'insecure: true', 'tls: { rejectUnauthorized: false }', 'insecureSkipVerify: true']) {
    const result = tollgate(['validate', '--config', manifestFile(`
version: 1
upstreams:
  main: { targets: [https://127.0.0.1:9], ${key} }
routes:
  - { prefix: /api, upstream: main, auth: false }
`)])
    t.equal(result.status, 1, `${key}: refused`)
    t.match(result.stderr, /^upstreams\.main\.\w+: unknown key/m, `${key}: named as an unknown key`)
  }

  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tls-'))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  let reached = 0
  const upstream = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_request, response) => {
    reached++
    response.end('secret upstream answer')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    upstream.closeAllConnections()
    await new Promise<void>((resolve) => upstream.close(() => { resolve() }))
  })
  const { port: upstreamPort } = upstream.address() as AddressInfo
  const { port } = await startGateway(t, {
    version: 1,
    server: { docs: false },
    upstreams: { main: { targets: [`https://127.0.0.1:${upstreamPort}`] } },
    routes: [{ prefix: '/api', upstream: 'main', auth: false }]
  })
  const result = await exchange(port, 'GET /api/x HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n', { responses: 1 })
  t.equal(result.responses[0]?.status, 502, 'an unverifiable certificate is a bad gateway, not a pass')
  t.notMatch(result.text, /secret upstream answer|127\.0\.0\.1:\d+/, 'nothing of the upstream reaches the client')
  t.equal(reached, 0, 'no request was sent over the unverified connection')
})

t.test('an invalid auth section never yields a half-built gateway (createGateway rejects)', async (t) => {
  const error = await createGateway({
    version: 1,
    auth: { jwt: { secret: 'short', algorithms: ['HS256'] } },
    upstreams: { main: { targets: ['http://127.0.0.1:9'] } },
    routes: [{ prefix: '/api', upstream: 'main' }]
  }, { logLevel: 'silent' }).then(() => null, (reason: unknown) => reason as { problems?: string[] })
  t.ok(error, 'rejected')
  t.match(error?.problems, [/^auth\.jwt\.secret: /], 'with the problem under its manifest path')
})
