import t from 'tap'
import { AUDIENCE, bearer, buildApp, claims, ISSUER, SECRET, signHmac } from '../helpers/index.js'

// @fastify/http-proxy before 11.4.4: a client listing x-user-id in Connection made the proxy
// drop the header the gateway had set, as a hop-by-hop header.
t.test('identity header names listed in Connection are removed from it (every alias)', async (t) => {
  const { app } = await buildApp(t, { jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE }, identityHeaders: { 'x-user-id': 'sub', 'x-user-roles': 'roles' } })
  const token = signHmac(SECRET, claims('alice'))
  const res = await app.inject({ url: '/protected', headers: { ...bearer(token), connection: 'keep-alive, X-User-Id, x_user_roles, x.user.id, x-custom' } })
  t.equal(res.statusCode, 200)
  const { headers } = res.json()
  t.equal(headers.connection, 'keep-alive, x-custom')
  t.equal(headers['x-user-id'], 'alice')

  const only = await app.inject({ url: '/public', headers: { connection: 'x-user-id' } })
  t.equal(only.json().headers.connection, undefined, 'a Connection naming only identity headers is removed')
})
