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
 * routing, as is every other `x-forwarded-*` header (`x-forwarded-ssl` and
 * `x-forwarded-scheme` decide `request.ssl?` in Rack, for one): see isForwardingHeader.
 */
export const FORWARDING_HEADERS = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
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
