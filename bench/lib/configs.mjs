// The configurations under test. Each one proxies /api/* to the upstream with the
// prefix removed (/api/hello -> /hello). `kind` says who runs it:
//   direct  the load generator hits the upstream itself (the upper bound)
//   nginx   an nginx process the harness configures (only when nginx is on PATH)
//   node    lib/server.mjs builds it in its own child process
// `requires` names configurations that must run in the same run for its figures
// (every ratio is to BASELINE; the micro figures are differences to a pair).
// `request: 'item'` sends POST /api/items with a ~1 KB JSON body (lib/contracts.mjs)
// instead of GET /api/hello; `contracts` means the route validates the body (an
// invalid one must get 400) and answers the item reduced by its response schema
// rather than the upstream's exact bytes.

export const BASELINE = 'fastify-http-proxy'

export const CONFIGS = [
  {
    name: 'direct',
    kind: 'direct',
    group: 'main',
    title: 'direct to the upstream (upper bound)'
  },
  {
    name: 'nginx',
    kind: 'nginx',
    group: 'main',
    needs: 'nginx',
    title: 'nginx reverse proxy, upstream keep-alive (1 worker)'
  },
  {
    name: 'fastify-http-proxy',
    kind: 'node',
    group: 'main',
    title: 'bare fastify + @fastify/http-proxy (the baseline)'
  },
  {
    name: 'fast-gateway',
    kind: 'node',
    group: 'main',
    title: 'fast-gateway (restana + fast-proxy-lite)'
  },
  {
    name: 'express',
    kind: 'node',
    group: 'main',
    auth: true,
    title: 'express + http-proxy-middleware + express-rate-limit + jsonwebtoken RS256'
  },
  {
    name: 'tollgate-proxy',
    kind: 'node',
    group: 'main',
    title: 'Tollgate proxy only (createGateway, public route, logs at warn)'
  },
  {
    name: 'tollgate-full',
    kind: 'node',
    group: 'main',
    auth: true,
    logs: true,
    title: 'Tollgate full: JWT from JWKS, memory rate limit, metrics, info request logs to a file'
  },
  {
    name: 'tollgate-full-redis',
    kind: 'node',
    group: 'main',
    auth: true,
    logs: true,
    needs: 'redis',
    title: 'Tollgate full with the Redis rate-limit store'
  },
  {
    name: 'tollgate-rl-memory',
    kind: 'node',
    group: 'micro',
    needs: undefined,
    requires: ['tollgate-proxy'],
    title: 'micro: Tollgate proxy + in-memory rate limit (public route)'
  },
  {
    name: 'tollgate-rl-redis',
    kind: 'node',
    group: 'micro',
    needs: 'redis',
    requires: ['tollgate-proxy'],
    title: 'micro: Tollgate proxy + Redis rate limit (public route)'
  },
  {
    name: 'tollgate-plugin-proxy',
    kind: 'node',
    group: 'micro',
    title: 'micro: fastify + @tollgate/proxy alone (metrics off)'
  },
  {
    name: 'tollgate-plugin-metrics',
    kind: 'node',
    group: 'micro',
    requires: ['tollgate-plugin-proxy'],
    title: 'micro: fastify + @tollgate/metrics + @tollgate/proxy (metrics on, request logs off)'
  },
  {
    name: 'tollgate-plugin-proxy-twin',
    kind: 'node',
    group: 'micro',
    requires: ['tollgate-plugin-proxy'],
    title: 'micro: a second tollgate-plugin-proxy, identical: the A/A pair, whose figures show what the harness can resolve'
  },
  {
    name: 'tollgate-contracts-off',
    kind: 'node',
    group: 'micro',
    request: 'item',
    title: 'micro: Tollgate proxy, plain route, POST of a 1 KB JSON body, 1 KB answer passed through'
  },
  {
    name: 'tollgate-contracts-on',
    kind: 'node',
    group: 'micro',
    request: 'item',
    contracts: true,
    requires: ['tollgate-contracts-off'],
    title: 'micro: the same route with validate (POST body schema) and response (200 schema keeping 4 of 12 fields)'
  }
]

/** The micro figures: what a feature adds, measured as a pair in the same run. */
export const MICRO = [
  { name: 'rate limit, memory', with: 'tollgate-rl-memory', without: 'tollgate-proxy', issue: 4 },
  { name: 'rate limit, Redis', with: 'tollgate-rl-redis', without: 'tollgate-proxy', issue: 4 },
  { name: 'metrics on vs off', with: 'tollgate-plugin-metrics', without: 'tollgate-plugin-proxy', issue: 5 },
  { name: 'validation + shaping, 1 KB JSON', with: 'tollgate-contracts-on', without: 'tollgate-contracts-off', issue: 11 },
  // Two identical servers: any figure here is the harness's own noise, the floor under the others.
  { name: 'A/A (identical servers)', with: 'tollgate-plugin-proxy-twin', without: 'tollgate-plugin-proxy', issue: 8 }
]

/** The JWT the auth configurations verify (issuer, audience, roles). */
export const JWT_CLAIMS = { issuer: 'tollgate-bench', audience: 'tollgate-bench-api', subject: 'bench-user', roles: ['user'] }

export const REQUEST_PATH = '/api/hello?page=1'
export const DIRECT_PATH = '/hello?page=1'
export const CONNECTIONS = 50
