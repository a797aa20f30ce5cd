import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const KEY_LENGTH = 64
const SALT_BYTES = 16
/** OWASP's scrypt minimum (N=2^17 would be stronger; 2^14 keeps the example quick on small machines). */
const PARAMS = { N: 16384, r: 8, p: 1 } as const

function derive (password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, { ...options, maxmem: 64 * 1024 * 1024 }, (error, key) => {
      if (error === null) resolve(key)
      else reject(error)
    })
  })
}

/** `scrypt$N$r$p$<salt base64url>$<hash base64url>`, with a fresh random salt per call. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const hash = await derive(password, salt, KEY_LENGTH, PARAMS)
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), hash.toString('base64url')].join('$')
}

/** Compares in constant time; a malformed stored hash never matches. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number)
  const salt = Buffer.from(parts[4] ?? '', 'base64url')
  const expected = Buffer.from(parts[5] ?? '', 'base64url')
  if (N === undefined || r === undefined || p === undefined || expected.length === 0) return false
  const actual = await derive(password, salt, expected.length, { N, r, p })
  return timingSafeEqual(actual, expected)
}

/** A hash of a random password: login runs scrypt against it for unknown e-mails, so timing does not reveal which exist. */
export const DUMMY_HASH_PROMISE: Promise<string> = hashPassword(randomBytes(16).toString('hex'))
