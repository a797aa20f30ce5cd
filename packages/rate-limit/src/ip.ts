/**
 * The bucket name of a client IP: IPv4 as is; IPv6 reduced to its `/subnet` prefix (one
 * customer usually holds a whole /64, so per-address buckets would let one client rotate
 * through 2^64 fresh buckets), written in full lower-case form so that every spelling of one
 * address (`::1`, `0:0::1`, upper case) lands in one bucket; IPv4-mapped IPv6 as IPv4.
 *
 * @fastify/rate-limit has the same idea (`normalizeIP`); it is written here because importing
 * that package's types would also import its `FastifyContextConfig.rateLimit` augmentation,
 * which conflicts with ours (same key, different shape).
 */
export function ipBucket (ip: string, subnet: number): string {
  if (!ip.includes(':')) return ip
  const groups = parseIPv6(ip)
  if (groups === null) return ip.toLowerCase()
  // ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket.
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    const high = groups[6]!
    const low = groups[7]!
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`
  }
  let bits = subnet
  const out: string[] = []
  for (const group of groups) {
    const keep = bits >= 16 ? 16 : Math.max(bits, 0)
    bits -= 16
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff
    out.push((group & mask).toString(16))
  }
  return subnet >= 128 ? out.join(':') : `${out.join(':')}/${subnet}`
}

/** Eight 16-bit groups, or `null` when `ip` is not an IPv6 address. */
function parseIPv6 (ip: string): number[] | null {
  let text = ip
  const zone = text.indexOf('%')
  if (zone !== -1) text = text.slice(0, zone)
  // An embedded IPv4 tail (::ffff:1.2.3.4, ::1.2.3.4) becomes two groups.
  const lastColon = text.lastIndexOf(':')
  const tail = text.slice(lastColon + 1)
  if (tail.includes('.')) {
    const octets = tail.split('.').map(Number)
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return null
    text = `${text.slice(0, lastColon + 1)}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return null
  const head = halves[0] === '' ? [] : halves[0]!.split(':')
  const rest = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : []
  const missing = 8 - head.length - rest.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null
  const parts = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest]
  const groups: number[] = []
  for (const part of parts) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return null
    groups.push(parseInt(part, 16))
  }
  return groups
}
