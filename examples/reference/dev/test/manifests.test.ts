import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseManifestText } from '@tollgate/gateway'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'

// Validated with the gateway's own loader (schema, env substitution, cross-references):
// the manifests are only as valid as the gateway says they are.
const gatewayDir = fileURLToPath(new URL('../../gateway/', import.meta.url))
const deployDir = fileURLToPath(new URL('../../../../deploy/k8s/', import.meta.url))
const env = { REDIS_URL: 'redis://127.0.0.1:6379' }
const redisText = await readFile(gatewayDir + 'tollgate.redis.yaml', 'utf8')

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are read loosely
type Loose = any

async function load (name: string): Promise<{ text: string, manifest: Loose }> {
  const file = gatewayDir + name
  const text = await readFile(file, 'utf8')
  return { text, manifest: parseManifestText(text, file, { env }) }
}

t.test('both manifests are valid for the gateway', async (t) => {
  for (const name of ['tollgate.yaml', 'tollgate.redis.yaml']) {
    const { manifest } = await load(name)
    t.equal(manifest.version, 1, name)
  }
  t.throws(() => parseManifestText('version: 1\nfoo: 1\nupstreams: { a: { targets: [http://x] } }\nroutes: [{ prefix: /a, upstream: a }]\n', 'probe.yaml'),
    'the loader does refuse invalid manifests (so the checks above mean something)')
})

t.test('the Redis manifest is the in-memory one plus a redis section, and nothing else', async (t) => {
  const memory = parse((await load('tollgate.yaml')).text)
  const redis = parse((await load('tollgate.redis.yaml')).text)
  t.same(redis.redis, { url: '${REDIS_URL}', keyPrefix: '${REDIS_KEY_PREFIX:-tollgate:reference:}' })
  t.equal((await load('tollgate.redis.yaml')).manifest.redis.keyPrefix, 'tollgate:reference:', 'the key prefix defaults to tollgate:reference:')
  t.notOk('redis' in memory)
  delete redis.redis
  t.same(redis, memory)
  t.throws(() => parseManifestText(redisText, 'tollgate.redis.yaml', { env: {} }), /REDIS_URL/)
})
t.test('the routes are those of issue 7', async (t) => {
  const { manifest } = await load('tollgate.yaml')
  const route = (prefix: string): Loose => manifest.routes.find((r: { prefix: string }) => r.prefix === prefix)
  t.match(route('/api/auth'), { upstream: 'auth', auth: false, rateLimit: { max: 10, window: '1m', by: 'ip' } })
  t.match(route('/api/posts'), { upstream: 'posts', auth: { methods: ['jwt', 'apiKey'], roles: ['user', 'partner'] }, stripCredentials: true })
  t.match(route('/api/admin'), { upstream: 'posts', rewritePrefix: '/admin', auth: { methods: ['jwt'], roles: ['admin'] } })
  t.match(route('/api/meetings'), { upstream: 'chat', websocket: true, auth: { methods: ['jwt'] } })
  t.same(manifest.upstreams.resumes, { transport: 'nest-tcp', targets: ['tcp://127.0.0.1:3003'], timeout: '5s' })
  t.match(route('/api/resumes'), { upstream: 'resumes', auth: { methods: ['jwt'], roles: ['user'] }, rateLimit: { by: 'user' } })
  // Every pattern gets the envelope: the service reads the owner from its verified identity, never from the body.
  const patterns = route('/api/resumes').patterns as Array<{ method: string, path: string, pattern?: unknown, event?: unknown, data: string }>
  t.same(patterns.map((p) => `${p.method} ${p.path} ${JSON.stringify(p.pattern ?? { event: p.event })} ${p.data}`), [
    'GET / {"cmd":"list_resumes","service":"resumes"} envelope',
    'GET /:id {"cmd":"get_resume","service":"resumes"} envelope',
    'POST / {"cmd":"create_resume","service":"resumes"} envelope',
    'PATCH /:id {"cmd":"update_resume","service":"resumes"} envelope',
    'DELETE /:id {"cmd":"delete_resume","service":"resumes"} envelope',
    'POST /:id/views {"event":{"event":"resume_viewed","service":"resumes"}} envelope'
  ])
  t.same(manifest.upstreams.posts.targets, ['http://127.0.0.1:3002', 'http://127.0.0.1:3012'])
  t.equal(manifest.upstreams.posts.healthCheck.path, '/health')
  t.match(manifest.auth.jwt, { issuer: 'example-auth', audience: 'example-api', algorithms: ['RS256'] })
  const key = manifest.auth.apiKeys.keys[0]
  t.equal(key.sha256, createHash('sha256').update('example-partner-key').digest('hex'))
  t.same(key.roles, ['partner'])
})

t.test('addresses follow the environment, for free ports in tests', async (t) => {
  const manifest: Loose = parseManifestText(await readFile(gatewayDir + 'tollgate.yaml', 'utf8'), gatewayDir + 'tollgate.yaml', {
    env: { GATEWAY_PORT: '0', AUTH_URL: 'http://127.0.0.1:1', POSTS_A_URL: 'http://127.0.0.1:2', POSTS_B_URL: 'http://127.0.0.1:3', CHAT_URL: 'http://127.0.0.1:4', RESUMES_TCP: 'tcp://127.0.0.1:5', JWKS_URL: 'http://127.0.0.1:1/jwks' }
  })
  t.equal(manifest.server.port, 0)
  t.same(manifest.upstreams.posts.targets, ['http://127.0.0.1:2', 'http://127.0.0.1:3'])
  t.same(manifest.upstreams.resumes.targets, ['tcp://127.0.0.1:5'])
  t.equal(manifest.auth.jwt.jwksUrl, 'http://127.0.0.1:1/jwks')
})

t.test('the Kubernetes ConfigMap carries a valid manifest with the same routes', async (t) => {
  const documents = parseAllDocuments(await readFile(deployDir + 'gateway.yaml', 'utf8')).map((document) => document.toJS() as Loose)
  const configMap = documents.find((document) => document.kind === 'ConfigMap')
  const inCluster: Loose = parseManifestText(configMap.data['tollgate.yaml'], 'configmap:tollgate.yaml', { env })
  const { manifest: local } = await load('tollgate.redis.yaml')
  t.equal(inCluster.server.host, '0.0.0.0')
  t.ok(inCluster.redis, 'uses Redis')
  const strip = (routes: Loose[]): Loose[] => routes.map(({ description: _description, ...route }) => route)
  t.same(strip(inCluster.routes), strip(local.routes), 'same routes and protections as the local deployment')
  t.same(inCluster.auth.apiKeys, local.auth.apiKeys)
  t.same(inCluster.auth.identityHeaders, local.auth.identityHeaders)
  t.same(inCluster.upstreams.resumes, { ...local.upstreams.resumes, targets: ['tcp://resumes:3003'] }, 'the resumes upstream, at its in-cluster Service')
})
