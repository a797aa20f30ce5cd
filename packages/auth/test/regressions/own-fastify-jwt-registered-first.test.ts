import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import tollgateAuth, { type JwtOptions } from '../../src/index.js'
import { AUDIENCE, bearer, claims, ISSUER, jwksServer, makeKey, SECRET, signHmac, signWith } from '../helpers/index.js'

// The README says the plugin claims neither `fastify.jwt` nor `request.user`, so a user may
// register their own @fastify/jwt next to it. It used to register @fastify/jwt in a child
// scope for a secret or a PEM key: with the user's @fastify/jwt registered first, that child
// found `request.user` already decorated and threw FST_ERR_DEC_ALREADY_PRESENT, out of
// `app.register()`/`app.ready()` and up to the process as an uncaught exception.

const USER_SECRET = 'the-users-own-secret-for-their-own-routes-0123'
const ec = makeKey('ec', 'e1')

/** The user's app: their own @fastify/jwt and Tollgate's auth, in the given order, and a route each. */
async function userApp (t: Test, order: 'own-first' | 'tollgate-first', jwt: JwtOptions): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  if (order === 'own-first') await app.register(fastifyJwt, { secret: USER_SECRET })
  await app.register(tollgateAuth, { jwt: { ...jwt, issuer: ISSUER, audience: AUDIENCE } })
  if (order === 'tollgate-first') await app.register(fastifyJwt, { secret: USER_SECRET })
  // The user's own route, verified by their own @fastify/jwt.
  app.get('/mine', { config: { auth: false } }, async (request) => {
    await request.jwtVerify()
    return { user: request.user, identity: request.tollgateIdentity }
  })
  // A route protected by Tollgate.
  app.get('/ours', async (request) => ({ user: request.user, identity: request.tollgateIdentity }))
  await app.ready()
  return app
}

t.test("the user's own @fastify/jwt and @tollgate/auth work side by side, registered in either order", async (t) => {
  const jwks = await jwksServer(t, [ec])
  const sources: Record<string, { jwt: JwtOptions, sign: (payload: Record<string, unknown>) => string }> = {
    secret: { jwt: { secret: SECRET }, sign: (payload) => signHmac(SECRET, payload) },
    publicKey: { jwt: { publicKey: ec.publicPem }, sign: (payload) => signWith(ec, payload) },
    jwksUrl: { jwt: { jwksUrl: jwks.url }, sign: (payload) => signWith(ec, payload) }
  }
  for (const order of ['own-first', 'tollgate-first'] as const) {
    for (const [source, { jwt, sign }] of Object.entries(sources)) {
      await t.test(`${order}, jwt.${source}`, async (t) => {
        const app = await userApp(t, order, jwt)
        const mine = app.jwt.sign({ sub: 'their-user' })
        const ours = sign(claims('alice'))

        const ownRoute = await app.inject({ url: '/mine', headers: bearer(mine) })
        t.equal(ownRoute.statusCode, 200, "the user's request.jwtVerify() accepts their token")
        t.match(ownRoute.json(), { user: { sub: 'their-user' }, identity: null })

        const tollgateRoute = await app.inject({ url: '/ours', headers: bearer(ours) })
        t.equal(tollgateRoute.statusCode, 200, "Tollgate's auth accepts its token")
        t.match(tollgateRoute.json(), { user: null, identity: { id: 'alice', method: 'jwt' } }, 'request.user is left to the user')

        t.equal((await app.inject({ url: '/ours', headers: bearer(mine) })).statusCode, 401, "the user's token is not Tollgate's")
        // (@fastify/jwt answers 401, or 500 for an algorithm its secret cannot verify)
        t.not((await app.inject({ url: '/mine', headers: bearer(ours) })).statusCode, 200, "Tollgate's token is not the user's")
      })
    }
  }
})
