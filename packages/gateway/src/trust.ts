import proxyAddr from '@fastify/proxy-addr'

/** Decides whether the socket peer is a proxy we trust, as Fastify's `trustProxy` does. */
export type TrustPeer = (address: string, hop: number) => boolean

export function compileTrust (trustProxy: boolean | number | string[] | undefined): TrustPeer {
  if (trustProxy === true) return () => true
  if (trustProxy === undefined || trustProxy === false) return () => false
  if (typeof trustProxy === 'number') return (_address, hop) => hop < trustProxy
  return proxyAddr.compile(trustProxy)
}

/**
 * Set only by a proxy we trust; from anyone else they are lies and are removed before
 * routing, as is every `x-forwarded-*` header (`-for`, `-host`, `-proto`, but also `-ssl`
 * and `-scheme`, which decide `request.ssl?` in Rack): see isForwardingHeader.
 */
export const FORWARDING_HEADERS = [
  'forwarded',
  'x-real-ip',
  'cf-connecting-ip',
  'true-client-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'x-original-host',
  'x-host',
  'front-end-https',
  'x-url-scheme'
] as const

const FORWARDING_SET: ReadonlySet<string> = new Set(FORWARDING_HEADERS)

/** Whether a (lower-case, alias-normalised) header name is one only a trusted proxy may set. */
export function isForwardingHeader (name: string): boolean {
  return FORWARDING_SET.has(name) || name.startsWith('x-forwarded-')
}

/** Never honoured from anyone: they let a client re-route or re-method a request past the gateway's checks. */
export const OVERRIDE_HEADERS = ['x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-method-override', 'x-http-method'] as const
