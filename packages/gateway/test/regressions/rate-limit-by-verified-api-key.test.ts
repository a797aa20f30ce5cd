// `by: apiKey` counted the API key header as sent, verified or not: on a public route (or
// one authenticated by token), rotating junk keys bought a fresh bucket per request.
import t from 'tap'
import { createHash } from 'node:crypto'
import { request } from 'undici'
import { startGateway } from '../helpers/hostile.js'
import { echoUpstream } from '../helpers/upstream.js'

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

t.test('by: apiKey counts the verified key; an unverified one counts as the client IP', async (t) => {
  const upstream = await echoUpstream()
  t.teardown(upstream.close)
  const { base } = await startGateway(t, {
    version: 1,
    auth: {
      apiKeys: {
        header: 'x-api-key',
        keys: [{ id: 'partner-a', sha256: sha256('key-a') }, { id: 'partner-b', sha256: sha256('key-b') }]
      }
    },
    upstreams: { echo: { targets: [upstream.url] } },
    routes: [
      { prefix: '/open', upstream: 'echo', auth: false, rateLimit: { max: 1, window: '1m', by: 'apiKey' } },
      { prefix: '/partners', upstream: 'echo', rateLimit: { max: 1, window: '1m', by: 'apiKey' } }
    ]
  })
  const status = async (path: string, key: string): Promise<number> => {
    const response = await request(`${base}${path}`, { headers: { 'x-api-key': key } })
    await response.body.dump()
    return response.statusCode
  }

  t.equal(await status('/open/x', 'junk-1'), 200)
  t.equal(await status('/open/x', 'junk-2'), 429, 'another junk key is the same client: its IP')

  t.equal(await status('/partners/x', 'key-a'), 200)
  t.equal(await status('/partners/x', 'key-a'), 429, 'a verified key has its bucket')
  t.equal(await status('/partners/x', 'key-b'), 200, 'and another verified key its own')
})
