/** Defaults of the `server` section, documented in the README; the gateway and the validator read them. */
export const SERVER_DEFAULTS = {
  host: '0.0.0.0',
  port: 8080,
  bodyLimit: '1mb',
  shutdownGrace: '10s',
  requestTimeout: '60s',
  headersTimeout: '15s',
  keepAliveTimeout: '72s',
  maxHeaderSize: '16kb',
  maxHeaders: 100,
  health: '/healthz',
  metrics: '/metrics',
  docs: '/docs'
} as const
