import type { AuthConfig } from '../config.js'
import { MemoryStore } from './memory.js'
import { PostgresStore } from './postgres.js'
import type { Store } from './types.js'

export { MemoryStore } from './memory.js'
export { PostgresStore } from './postgres.js'
export type * from './types.js'

/** DATABASE_URL → PostgreSQL; else the embedded store (persisted when DATA_FILE is set). */
export function storeFor (config: Pick<AuthConfig, 'databaseUrl' | 'databaseSchema' | 'dataFile'>): Store {
  if (config.databaseUrl !== undefined) return new PostgresStore(config.databaseUrl, config.databaseSchema)
  return new MemoryStore(config.dataFile)
}
