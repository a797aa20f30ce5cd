/** Environment → service configuration, resolved once at startup. */
export interface AuthConfig {
  host: string
  port: number
  /** Access-token lifetime in seconds (env ACCESS_TOKEN_TTL: "15m", "900", "900s"). */
  accessTokenTtl: number
  /** Refresh-token lifetime in seconds (env REFRESH_TOKEN_TTL, default 7 days). */
  refreshTokenTtl: number
  issuer: string
  audience: string
  /**
   * Lower-cased e-mail addresses of the admin accounts (env ADMIN_EMAILS, comma-separated),
   * created at startup with `adminPassword` so that nobody can claim one by registering it.
   */
  adminEmails: ReadonlySet<string>
  /** The initial password of the admin accounts (env ADMIN_PASSWORD); required with ADMIN_EMAILS. */
  adminPassword: string | undefined
  /** PEM file holding the RSA private key (env PRIVATE_KEY_FILE); a key is generated at startup when absent. */
  privateKeyFile: string | undefined
  /** JSON file persisting the embedded store (env DATA_FILE); memory only when absent. */
  dataFile: string | undefined
  /** postgres:// URL switching the store to PostgreSQL (env DATABASE_URL). */
  databaseUrl: string | undefined
  /** Schema holding the PostgreSQL tables (env DATABASE_SCHEMA, default "public"). */
  databaseSchema: string
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** Parses "900", "900s", "15m", "1h", "7d" into whole seconds. */
export function parseSeconds (value: string, name: string): number {
  const match = /^(\d+)(s|m|h|d)?$/.exec(value.trim())
  if (match === null) throw new Error(`${name} must be a number of seconds or a duration such as "15m", "1h", "7d" (got "${value}")`)
  const seconds = Number(match[1]) * (UNITS[match[2] ?? 's'] ?? 1)
  if (seconds <= 0) throw new Error(`${name} must be positive`)
  return seconds
}

function parsePort (value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be an integer from 0 to 65535 (got "${value}")`)
  return port
}

function blankToUndefined (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

export function resolveConfig (env: NodeJS.ProcessEnv = process.env): AuthConfig {
  const databaseUrl = blankToUndefined(env.DATABASE_URL)
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new Error('DATABASE_URL must be a postgres:// or postgresql:// URL')
  }
  const databaseSchema = blankToUndefined(env.DATABASE_SCHEMA) ?? 'public'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(databaseSchema)) throw new Error('DATABASE_SCHEMA must be a lower-case SQL identifier')
  const adminEmails = new Set((env.ADMIN_EMAILS ?? '').split(',').map((email) => email.trim().toLowerCase()).filter((email) => email !== ''))
  const adminPassword = env.ADMIN_PASSWORD === undefined || env.ADMIN_PASSWORD === '' ? undefined : env.ADMIN_PASSWORD
  if (adminEmails.size > 0 && adminPassword === undefined) {
    throw new Error('ADMIN_EMAILS needs ADMIN_PASSWORD: the admin accounts are created at startup with it, so that nobody can claim one by registering its address')
  }
  if (adminPassword !== undefined && [...adminPassword].length < 8) throw new Error('ADMIN_PASSWORD must be at least 8 characters')
  return Object.freeze({
    host: blankToUndefined(env.HOST) ?? '127.0.0.1',
    port: parsePort(env.PORT, 3001),
    accessTokenTtl: parseSeconds(blankToUndefined(env.ACCESS_TOKEN_TTL) ?? '15m', 'ACCESS_TOKEN_TTL'),
    refreshTokenTtl: parseSeconds(blankToUndefined(env.REFRESH_TOKEN_TTL) ?? '7d', 'REFRESH_TOKEN_TTL'),
    issuer: blankToUndefined(env.TOKEN_ISSUER) ?? 'example-auth',
    audience: blankToUndefined(env.TOKEN_AUDIENCE) ?? 'example-api',
    adminEmails,
    adminPassword,
    privateKeyFile: blankToUndefined(env.PRIVATE_KEY_FILE),
    dataFile: blankToUndefined(env.DATA_FILE),
    databaseUrl,
    databaseSchema
  })
}
