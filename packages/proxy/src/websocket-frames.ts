import { randomBytes } from 'node:crypto'

/**
 * Just enough of RFC 6455 framing to police a raw WebSocket tunnel: frame headers are
 * read as the bytes stream past, payloads are skipped, never copied or unmasked.
 */

/** Longest frame header: 2 bytes, 8 of extended length, 4 of mask. */
const MAX_HEADER = 14

/**
 * Follows the frames of one direction of a tunnel, chunk by chunk.
 *
 * With a `limit`, `scan()` returns the part of a chunk that may be forwarded: a frame
 * header split across chunks is held back until it is whole, and when a frame's payload
 * or the message it belongs to (data frame plus continuations) would exceed `limit`,
 * `tooBig` turns true and only the bytes before that frame's header are returned, so
 * the peer has seen whole frames only. With `admit`, each new data message (not its
 * continuations, not control frames) must be admitted before its first frame passes; a
 * refusal turns `tooMany` true and cuts the same way. Without a limit (`0`) and without
 * `admit` it only observes.
 */
export class FrameScanner {
  readonly limit: number
  /** Set once a frame over `limit` was seen; nothing of it was returned by `scan()`. */
  tooBig = false
  /** Set once `admit` refused a message; nothing of it was returned by `scan()`. */
  tooMany = false
  /** Asked once per new data message; false refuses it. */
  readonly #admit: (() => boolean) | undefined
  /** Whether anything is held back or cut (a limit or an admission check), or only observed. */
  readonly #policing: boolean
  /** Payload bytes of the current frame not seen yet. */
  #remaining = 0
  /** A frame header cut by the end of the previous chunk (at most 13 bytes). */
  #partial: Buffer | null = null
  /** Payload bytes of the data message in progress (fragments so far). */
  #message = 0

  constructor (limit: number, admit?: () => boolean) {
    this.limit = limit
    this.#admit = admit
    this.#policing = limit > 0 || admit !== undefined
  }

  /**
   * True when what was forwarded so far ends between two frames, so a frame written now
   * would not land inside another one (a held-back partial header was not forwarded).
   */
  get atBoundary (): boolean {
    return this.#remaining === 0 && (this.#partial === null || this.#policing)
  }

  /** Follows `chunk`; returns what may be forwarded (a view, or the held header plus the chunk). */
  scan (chunk: Buffer): Buffer {
    if (this.tooBig || this.tooMany) return chunk.subarray(0, 0)
    let buf = chunk
    if (this.#partial !== null) {
      buf = Buffer.concat([this.#partial, chunk])
      this.#partial = null
    }
    const length = buf.length
    let pos = 0
    if (this.#remaining > 0) {
      const skip = Math.min(this.#remaining, length)
      this.#remaining -= skip
      pos = skip
    }
    while (pos < length) {
      const available = length - pos
      if (available < 2) return this.#hold(buf, pos)
      const b0 = buf[pos]!
      const b1 = buf[pos + 1]!
      const short = b1 & 0x7f
      const headerLength = 2 + (short === 126 ? 2 : short === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0)
      if (available < headerLength) return this.#hold(buf, pos)
      let payload = short
      if (short === 126) payload = buf.readUInt16BE(pos + 2)
      else if (short === 127) payload = buf.readUInt32BE(pos + 2) * 4_294_967_296 + buf.readUInt32BE(pos + 6)
      const opcode = b0 & 0x0f
      if ((opcode & 0x08) === 0) {
        // A data frame starts a message; a continuation (opcode 0) adds to it.
        const total = opcode === 0 ? this.#message + payload : payload
        if (this.limit > 0 && total > this.limit) {
          this.tooBig = true
          return buf.subarray(0, pos)
        }
        if (opcode !== 0 && this.#admit !== undefined && !this.#admit()) {
          this.tooMany = true
          return buf.subarray(0, pos)
        }
        this.#message = (b0 & 0x80) !== 0 ? 0 : total
      }
      pos += headerLength
      const skip = Math.min(payload, length - pos)
      pos += skip
      this.#remaining = payload - skip
    }
    return buf
  }

  #hold (buf: Buffer, pos: number): Buffer {
    // Copied: at most MAX_HEADER - 1 bytes, and the chunk is not retained.
    this.#partial = Buffer.from(buf.subarray(pos, pos + MAX_HEADER))
    return this.#policing ? buf.subarray(0, pos) : buf
  }
}

/** A close frame with `code` and a short `reason`; masked when it goes to a server (RFC 6455 5.3). */
export function closeFrame (code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123)
  const payload = Buffer.allocUnsafe(2 + text.length)
  payload.writeUInt16BE(code, 0)
  text.copy(payload, 2)
  const header = Buffer.from([0x88, (masked ? 0x80 : 0) | payload.length])
  if (!masked) return Buffer.concat([header, payload])
  const mask = randomBytes(4)
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!
  return Buffer.concat([header, mask, payload])
}
