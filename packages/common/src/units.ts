/** A duration: a number of milliseconds, or a string such as `250ms`, `10s`, `1m`, `1h`, `1d`. */
export type Duration = number | string

/** A size: a number of bytes, or a string such as `512kb`, `1mb`, `1gb` (binary units: 1kb = 1024 bytes). */
export type Size = number | string

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

const SIZE = /^(\d+(?:\.\d+)?)(b|kb|mb|gb)$/
const SIZE_BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const

/**
 * Parses a duration into whole milliseconds.
 * Throws a `RangeError` naming `path` so configuration errors point at the key.
 */
export function parseDuration (value: unknown, path = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value)
  } else if (typeof value === 'string') {
    const match = DURATION.exec(value.trim().toLowerCase())
    if (match !== null) {
      return Math.round(Number(match[1]) * DURATION_MS[match[2] as keyof typeof DURATION_MS])
    }
    if (/^\d+$/.test(value.trim())) return Number(value.trim())
  }
  throw new RangeError(`${path}: invalid duration ${JSON.stringify(value)} (use a number of milliseconds or a string like "250ms", "10s", "1m", "1h")`)
}

/** Parses a size into whole bytes (binary units). Throws a `RangeError` naming `path`. */
export function parseSize (value: unknown, path = 'size'): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value
  } else if (typeof value === 'string') {
    const match = SIZE.exec(value.trim().toLowerCase())
    if (match !== null) {
      return Math.floor(Number(match[1]) * SIZE_BYTES[match[2] as keyof typeof SIZE_BYTES])
    }
    if (/^\d+$/.test(value.trim())) return Number(value.trim())
  }
  throw new RangeError(`${path}: invalid size ${JSON.stringify(value)} (use a number of bytes or a string like "512kb", "1mb")`)
}
