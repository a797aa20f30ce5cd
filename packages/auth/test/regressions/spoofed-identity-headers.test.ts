import t, { type Test } from 'tap'
import Fastify from 'fastify'
import tollgateAuth from '../../src/index.js'
import { AUDIENCE, claims, echo, ISSUER, listen, rawRequest, SECRET, signHmac } from '../helpers/index.js'

const spoofs = [
  'x-user-id: admin',
  'X-USER-ID: admin',
  'X-User-Id: admin',
  'x-user-id: admin2',
  'x_user_id: admin',
  'X_User_Id: admin',
  'x.user.id: admin',
  'x-user_id: admin',
  'x-user-roles: admin',
  'x_user_roles: admin',
  'x.user.roles: admin'
].join('\n')

async function gateway (t: Test): Promise<number> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tollgateAuth, {
    jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' }
  })
  app.get('/public', { config: { auth: false } }, echo)
  app.get('/protected', echo)
  app.setNotFoundHandler((request, reply) => { void reply.code(404).send({ headers: request.headers, raw: request.raw.rawHeaders }) })
  return await listen(app)
}

function identityNames (headers: Record<string, unknown>): string[] {
  return Object.keys(headers).filter((name) => /^x[-_.]user[-_.](id|roles)$/i.test(name))
}

t.test('client identity headers in every alias form are removed on public routes', async (t) => {
  const port = await gateway(t)
  const res = await rawRequest(port, `GET /public HTTP/1.1\nHost: x\n${spoofs}`)
  t.equal(res.status, 200)
  const body = JSON.parse(res.body)
  t.same(identityNames(body.headers), [])
  t.equal(body.identity, null)
})

t.test('client identity headers are removed on unmatched routes, from headers and rawHeaders', async (t) => {
  const port = await gateway(t)
  const res = await rawRequest(port, `GET /nowhere HTTP/1.1\nHost: x\n${spoofs}`)
  t.equal(res.status, 404)
  const body = JSON.parse(res.body)
  t.same(identityNames(body.headers), [])
  t.notOk((body.raw as string[]).some((name) => /^x[-_.]user/i.test(name)), 'rawHeaders scrubbed too')
})

t.test('on protected routes only the gateway-computed values remain', async (t) => {
  const port = await gateway(t)
  const token = signHmac(SECRET, claims('alice', { roles: ['user'] }))
  const res = await rawRequest(port, `GET /protected HTTP/1.1\nHost: x\nAuthorization: Bearer ${token}\n${spoofs}`)
  t.equal(res.status, 200)
  const body = JSON.parse(res.body)
  t.same(identityNames(body.headers).sort(), ['x-user-id', 'x-user-roles'])
  t.equal(body.headers['x-user-id'], 'alice')
  t.equal(body.headers['x-user-roles'], 'user')
})

t.test('a refused request never leaves spoofed identity headers behind', async (t) => {
  const port = await gateway(t)
  const res = await rawRequest(port, `GET /protected HTTP/1.1\nHost: x\n${spoofs}`)
  t.equal(res.status, 401)
})
