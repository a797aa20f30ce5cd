// The Redis the Redis configurations use, and their keys: each run writes under its own
// prefix and removes it afterwards (SCAN, so a shared Redis is never blocked or flushed).

export const REDIS_URL = 'redis://127.0.0.1:6379'

/** A client that fails fast instead of queueing or reconnecting; rejects when Redis is unreachable. */
export async function connectRedis () {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 1000, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return client
  } catch (error) {
    client.disconnect()
    throw error
  }
}

/** Calls `each` with every page of keys under `prefix` (bounded: at most 10,000 pages). */
async function scanKeys (client, prefix, each) {
  let cursor = '0'
  for (let page = 0; page < 10_000; page++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    if (keys.length > 0) await each(keys)
    cursor = next
    if (cursor === '0') break
  }
}

/** Deletes the keys under `prefix`; resolves with how many. */
export async function removeKeys (client, prefix) {
  let removed = 0
  await scanKeys(client, prefix, async (keys) => { removed += await client.del(...keys) })
  return removed
}

/** How many keys are under `prefix`. */
export async function countKeys (client, prefix) {
  let count = 0
  await scanKeys(client, prefix, (keys) => { count += keys.length })
  return count
}
