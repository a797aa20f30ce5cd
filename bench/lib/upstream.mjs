/* global process, Buffer */
// The upstream every configuration proxies to (node:http, a ~100-byte JSON
// answer; POST /items answers a ~1 KB list item to a ~1 KB JSON body, for the
// route-contract pair), and the JWKS server the JWT configurations fetch their
// key from. Runs as its own child process; reports its ports over IPC.
import { createServer } from 'node:http'
import { ITEM_DIRECT_PATH, ITEM_REQUEST_BODY, ITEM_RESPONSE_BODY } from './contracts.mjs'

export const BODY = Buffer.from(JSON.stringify({
  id: 42,
  title: 'Tollgate benchmark upstream',
  author: 'bench',
  tags: ['gateway', 'proxy'],
  ok: true
}))

const jwks = Buffer.from(process.env.BENCH_JWKS ?? '{"keys":[]}')
let served = 0
let refused = 0
let jwksFetches = 0
let badBodies = 0

/** POST /items: the body must arrive byte for byte (validated or not), else 422 (not the gateway's 400); then the ~1 KB item. */
function item (request, response) {
  const chunks = []
  request.on('data', (chunk) => { chunks.push(chunk) })
  request.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    if (request.method !== 'POST' || !body.equals(ITEM_REQUEST_BODY)) {
      badBodies++
      response.writeHead(422, { 'content-type': 'application/json', 'content-length': 2 }).end('{}')
      return
    }
    served++
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': ITEM_RESPONSE_BODY.length }).end(ITEM_RESPONSE_BODY)
  })
}

const upstream = createServer((request, response) => {
  // The prefix must have been rewritten: /api/hello arrives as /hello.
  if (request.url.startsWith('/api')) {
    refused++
    response.writeHead(404, { 'content-type': 'application/json', 'content-length': 2 }).end('{}')
    return
  }
  if (request.url === ITEM_DIRECT_PATH) {
    item(request, response)
    return
  }
  served++
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length }).end(BODY)
})
// Keep proxies' pooled connections open across the whole run.
upstream.keepAliveTimeout = 120_000
upstream.headersTimeout = 125_000

const jwksServer = createServer((request, response) => {
  if (request.url === '/.well-known/jwks.json') {
    jwksFetches++
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': jwks.length }).end(jwks)
    return
  }
  response.writeHead(404).end()
})

function listen (server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve(server.address().port) })
  })
}

const [port, jwksPort] = await Promise.all([listen(upstream), listen(jwksServer)])
process.on('message', (message) => {
  if (message?.type === 'counts') process.send({ type: 'counts', served, refused, jwksFetches, badBodies })
  if (message?.type === 'stop') {
    upstream.closeAllConnections()
    jwksServer.closeAllConnections()
    upstream.close()
    jwksServer.close()
    process.exit(0)
  }
})
process.on('disconnect', () => { process.exit(0) })
process.send({ type: 'ready', port, jwksPort, bodyBytes: BODY.length })
