import t from 'tap'
import { resolveOptions, resolveRouteRule } from '../src/options.js'

t.test('defaults', async (t) => {
  const options = resolveOptions()
  t.match(options, {
    algorithm: 'fixed-window',
    default: null,
    onStoreError: 'allow',
    redis: null,
    apiKeyHeader: 'x-api-key',
    storeErrorRetryAfterSeconds: 5,
    errorLogIntervalMs: 10_000,
    ipv6Subnet: 64,
    maxKeys: 100_000,
    now: null
  })
  t.ok(Object.isFrozen(options))
  const redis = resolveOptions({ redis: { url: 'redis://127.0.0.1:6379' } }).redis
  t.same(redis, { url: 'redis://127.0.0.1:6379', client: null, keyPrefix: 'tollgate:', commandTimeoutMs: 250, connectTimeoutMs: 1000 })
})

t.test('a rule: durations parsed, by and algorithm resolved', async (t) => {
  const options = resolveOptions({ algorithm: 'sliding-window', apiKeyHeader: 'X-Key', default: { max: 100, window: '1m' } })
  t.same(options.default, { max: 100, windowMs: 60_000, algorithm: 'sliding-window', by: 'ip', header: null })
  t.same(resolveRouteRule({ max: 5, window: 1000, by: 'apiKey', algorithm: 'token-bucket' }, 'GET /x', options),
    { max: 5, windowMs: 1000, algorithm: 'token-bucket', by: 'apiKey', header: 'x-key' })
  t.same(resolveRouteRule({ max: 5, window: '10s', by: 'header:X-Tenant' }, 'GET /x', options),
    { max: 5, windowMs: 10_000, algorithm: 'sliding-window', by: 'header', header: 'x-tenant' })
  t.equal(resolveRouteRule(false, 'GET /x', options), null, 'false: never limited')
  t.equal(resolveRouteRule(undefined, 'GET /x', options), options.default, 'absent: the default')
  t.equal(resolveRouteRule(undefined, 'GET /x', resolveOptions()), null, 'absent without a default: not limited')
})

t.test('every bad option is refused with a message naming it', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ algorithm: 'leaky-bucket' }, /^algorithm: must be one of/],
    [{ onStoreError: 'ignore' }, /^onStoreError: must be "allow" or "deny"/],
    [{ default: { max: 1.5, window: '1m' } }, /^default\.max: must be a non-negative integer/],
    [{ default: { max: '10', window: '1m' } }, /^default\.max: must be a non-negative integer/],
    [{ default: { max: 10, window: 0 } }, /^default\.window: must be at least 1 ms/],
    [{ default: { max: 10, window: '1 minute' } }, /^default\.window: invalid duration/],
    [{ default: { max: 10, window: '1m', by: 'session' } }, /^default\.by: must be ip, user, apiKey or header:<name>/],
    [{ default: { max: 1e9, window: '100d' } }, /^default: max × window/],
    [{ default: 'yes' }, /^default: must be false or an object/],
    [{ apiKeyHeader: 'x api key' }, /^apiKeyHeader: must be a header name/],
    [{ storeErrorRetryAfter: -1 }, /^storeErrorRetryAfter: invalid duration/],
    [{ errorLogInterval: 'often' }, /^errorLogInterval: invalid duration/],
    [{ ipv6Subnet: 0 }, /^ipv6Subnet: must be an integer from 1 to 128/],
    [{ maxKeys: 0 }, /^maxKeys: must be a positive integer/],
    [{ now: 5 }, /^now: must be a function/],
    [{ defualt: { max: 1, window: '1m' } }, /^defualt: unknown key/],
    [{ redis: { url: 'redis://x', client: {} } }, /^redis\.client: must be an ioredis client/],
    [{ redis: { url: 'redis://x', keyPrefix: 'x'.repeat(65) } }, /^redis\.keyPrefix: must be a string of at most 64 characters/]
  ]
  for (const [options, message] of cases) {
    t.throws(() => resolveOptions(options as never), { code: 'TOLLGATE_RATE_LIMIT_INVALID_OPTION', message }, JSON.stringify(options).slice(0, 80))
  }
})
