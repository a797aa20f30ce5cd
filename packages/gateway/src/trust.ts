import proxyAddr from '@fastify/proxy-addr'

/** Decides whether the socket peer is a proxy we trust, as Fastify's `trustProxy` does. */
export type TrustPeer = (address: string, hop: number) => boolean

export function compileTrust (trustProxy: boolean | number | string[] | undefined): TrustPeer {
  if (trustProxy === true) return () => true
  if (trustProxy === undefined || trustProxy === false) return () => false
  if (typeof trustProxy === 'number') return (_address, hop) => hop < trustProxy
  return proxyAddr.compile(trustProxy)
}

/** Set only by a proxy we trust; from anyone else they are lies and are removed before routing. */
export const FORWARDING_HEADERS = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'forwarded',
  'x-real-ip',
  'cf-connecting-ip',
  'true-client-ip'
] as const

/** Never honoured from anyone: they let a client re-route or re-method a request past the gateway's checks. */
export const OVERRIDE_HEADERS = ['x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-method-override', 'x-http-method'] as const
