import type { Duration, Size } from '@tollgate/common'

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS'
export type AuthMethodName = 'jwt' | 'apiKey' | 'forward'
export type RateLimitAlgorithm = 'fixed-window' | 'sliding-window' | 'token-bucket'

export interface RateLimitRule {
  max: number
  window: Duration
  /** `ip` | `user` | `apiKey` | `header:<name>` */
  by?: string
  algorithm?: RateLimitAlgorithm
}

export interface ServerSection {
  host?: string
  port?: number
  /** Processes serving the port (node:cluster). Default 1. */
  workers?: number
  trustProxy?: boolean | number | string[]
  bodyLimit?: Size
  shutdownGrace?: Duration
  requestTimeout?: Duration
  headersTimeout?: Duration
  keepAliveTimeout?: Duration
  /** Largest request line plus headers accepted (431 beyond). Default `16kb`. */
  maxHeaderSize?: Size
  /** Most header fields a request may carry (431 beyond). Default `100`. */
  maxHeaders?: number
  /** Most simultaneous client connections; further ones are closed on accept. Default: no cap. */
  maxConnections?: number
  tls?: { cert: string, key: string, redirectHttpPort?: number }
  cors?: {
    origin?: boolean | string | string[]
    credentials?: boolean
    methods?: HttpMethod[]
    allowedHeaders?: string[]
    exposedHeaders?: string[]
    maxAge?: number
  }
  securityHeaders?: boolean
  docs?: string | false
  metrics?: string | false
  health?: string | false
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

export interface AuthSection {
  jwt?: {
    jwksUrl?: string
    secret?: string
    publicKey?: string
    issuer?: string | string[]
    audience?: string | string[]
    algorithms?: string[]
    clockTolerance?: Duration
    rolesClaim?: string
    permissionsClaim?: string
    jwksCooldown?: Duration
    insecureWeakSecret?: boolean
  }
  apiKeys?: {
    header?: string
    keys: Array<{ id: string, sha256: string, roles?: string[], permissions?: string[] }>
  }
  forward?: {
    url: string
    forwardHeaders?: string[]
    identityHeaders?: { id: string, roles?: string, permissions?: string }
    cacheTtl?: Duration
    timeout?: Duration
  }
  identityHeaders?: Record<string, string>
}

export interface UpstreamSection {
  /** `http` (the default: proxied) or a NestJS microservices transport (`tcp://`, `redis://`, `nats://` targets). */
  transport?: 'http' | 'nest-tcp' | 'nest-redis' | 'nest-nats'
  targets: Array<string | { url: string, weight?: number }>
  balance?: 'round-robin' | 'least-connections' | 'random'
  healthCheck?: { path?: string, interval?: Duration, timeout?: Duration, unhealthyAfter?: number, healthyAfter?: number }
  timeout?: Duration
  connectTimeout?: Duration
  /** Longest silence between two chunks of an answer's body (default `5m`). */
  bodyTimeout?: Duration
  /** How long an idle upstream connection is kept (default `4s`). */
  keepAliveTimeout?: Duration
  /** Most connections per target (default `128`). */
  connections?: number
  /** A PEM file (relative to the manifest) of the CAs that sign the https targets' certificates. */
  ca?: string
  retries?: number
  circuitBreaker?: { failures?: number, resetAfter?: Duration }
  /** Limits of WebSocket tunnels to this upstream (defaults: idle `5m`, `1mb` messages, 1000 client messages a second, 10000 tunnels). */
  websocket?: { idleTimeout?: Duration, maxMessageSize?: Size, maxMessagesPerSecond?: number, maxConnections?: number }
}

export interface RouteSection {
  prefix: string
  upstream: string
  rewritePrefix?: string
  methods?: HttpMethod[]
  auth?: false | { methods?: AuthMethodName[], roles?: string[], permissions?: string[] }
  rateLimit?: false | RateLimitRule
  stripCredentials?: boolean
  websocket?: boolean
  /** Methods and paths mapped to NestJS message or event patterns; the upstream must use a nest-* transport. */
  patterns?: PatternSection[]
  description?: string
  /** A path template under the prefix (`/:id/profile`); the route then matches it only. */
  path?: string
  /** The upstream path built from `path`'s params (`/internal/users/:id`), each percent-encoded. */
  rewrite?: string
  /** Per method: JSON Schemas of `body`, `querystring`, `params`, `headers`; invalid requests get 400. */
  validate?: Partial<Record<HttpMethod, Partial<Record<'body' | 'querystring' | 'params' | 'headers', SchemaSource>>>>
  /** Per status (`200`) or `2xx`: the schema a JSON answer is reduced to. */
  response?: Record<string, SchemaSource>
  /** Largest answer buffered for shaping; larger ones pass through untouched. Default `1mb`. */
  responseBufferLimit?: Size
  requestHeaders?: HeaderRulesSection
  responseHeaders?: HeaderRulesSection
}

/** A JSON Schema inline, or `{ $file: ./schemas/x.json }` relative to the manifest. */
export type SchemaSource = Record<string, unknown> | { $file: string }

/** Header rules, applied in this order: remove, rename, set, add. */
export interface HeaderRulesSection {
  set?: Record<string, string>
  add?: Record<string, string>
  remove?: string[]
  rename?: Record<string, string>
}

/** One method and path of a route with patterns (see @tollgate/microservices). */
export interface PatternSection {
  method: Exclude<HttpMethod, 'HEAD'>
  /** Below the prefix, with params: `/:id`. Default `/`. */
  path?: string
  /** Request/response: the reply is the 200 JSON answer. */
  pattern?: string | number | Record<string, unknown>
  /** Fire and forget: 202 once the transport took it. */
  event?: string | number | Record<string, unknown>
  /** Default `body` for POST, PUT, PATCH, else `params`. */
  data?: 'body' | 'params' | 'query' | 'envelope'
  array?: boolean
  description?: string
  /** JSON Schemas of this method's `body`, `querystring`, `params`, `headers` (over the route's `validate` for the method). */
  validate?: Partial<Record<'body' | 'querystring' | 'params' | 'headers', SchemaSource>>
  /** `{ 200: schema }` (or `2xx`): the reply's public shape (over the route's `response`). */
  response?: Record<string, SchemaSource>
}

/** A validated manifest, with `${VAR}` references already substituted. */
export interface Manifest {
  version: 1
  server?: ServerSection
  redis?: { url: string, keyPrefix?: string, commandTimeout?: Duration }
  auth?: AuthSection
  rateLimit?: { algorithm?: RateLimitAlgorithm, default?: RateLimitRule, onStoreError?: 'allow' | 'deny' }
  upstreams: Record<string, UpstreamSection>
  routes: RouteSection[]
}

/** A manifest as loaded from a file: where it came from, for resolving relative key paths. */
export interface LoadedManifest extends Manifest {
  /** The manifest file's directory; relative file paths in it resolve against this. */
  readonly baseDir?: string
}
