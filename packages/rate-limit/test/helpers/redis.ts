import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

export const REDIS_URL = 'redis://127.0.0.1:6379'

/** A key prefix no other test (or run) shares. */
export function uniquePrefix (name: string): string {
  return `tollgate-test:${name}:${process.pid}:${randomBytes(4).toString('hex')}:`
}

/**
 * A direct client for assertions and cleanup. Rejects (so the test fails, never skips) when
 * Redis at 127.0.0.1:6379 is not reachable.
 */
export async function connectRedis (t: Test): Promise<Redis> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => { client.disconnect() })
  return client
}

/** Every key under `prefix` (bounded SCAN over our prefix only). */
export async function keysUnder (client: Redis, prefix: string): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000)
    found.push(...keys)
    cursor = next
    if (cursor === '0') break
  }
  return found
}

/** Deletes the keys under `prefix`, and only those. */
export async function cleanPrefix (client: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(client, prefix)
  if (keys.length > 0) await client.del(...keys)
}

function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/** Registers cleanup of `prefix` on teardown, with its own short-lived connection. */
export function cleanupOnTeardown (t: Test, prefix: string): void {
  t.teardown(async () => {
    const client = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      await cleanPrefix(client, prefix)
    } finally {
      client.disconnect()
    }
  })
}
