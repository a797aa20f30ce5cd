/**
 * One Lua script per algorithm, run atomically by Redis (EVALSHA through ioredis'
 * `defineCommand`), so concurrent instances never race on read-modify-write.
 *
 * Each is the same integer arithmetic as its function in `../algorithms.ts` (keep them in
 * step: `test/parity.test.ts` compares them decision by decision).
 *
 * KEYS[1] the bucket; ARGV[1] now in epoch ms, or -1 to use Redis's own clock (`TIME`, so
 * every instance agrees whatever its local clock); ARGV[2] window ms; ARGV[3] max.
 * Returns "allowed remaining resetMs retryAfterMs" (allowed 1/0), one string of integers: a
 * bulk string costs ioredis 6's RESP decoder a fraction of what an array of four integers
 * does (about 13k instructions less a decision, counted with callgrind). `%d` truncates
 * toward zero, as Redis does converting a Lua number in a returned table.
 * Refused requests write nothing. Every write sets the key's TTL (the window; twice the
 * window for sliding-window, whose previous sub-window still counts).
 */

const PRELUDE = `
local function reply (allowed, remaining, reset, retry)
  return string.format('%d %d %d %d', allowed, remaining, reset, retry)
end
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local w = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
`

export const FIXED_WINDOW_LUA = `${PRELUDE}
local s = redis.call('HMGET', KEYS[1], 's', 'c')
local start = tonumber(s[1])
local count = tonumber(s[2])
if start == nil or count == nil or now >= start + w then
  start = now
  count = 0
end
local reset = math.min(start + w - now, w)
if count < max then
  count = count + 1
  redis.call('HSET', KEYS[1], 's', start, 'c', count)
  redis.call('PEXPIRE', KEYS[1], w)
  return reply(1, max - count, reset, 0)
end
return reply(0, 0, reset, reset)
`

export const SLIDING_WINDOW_LUA = `${PRELUDE}
local index = math.floor(now / w)
local elapsed = now - index * w
local current = 0
local previous = 0
local s = redis.call('HMGET', KEYS[1], 'i', 'c', 'p')
local si = tonumber(s[1])
if si ~= nil then
  if si == index then
    current = tonumber(s[2]) or 0
    previous = tonumber(s[3]) or 0
  elseif si == index - 1 then
    previous = tonumber(s[2]) or 0
  elseif si > index then
    index = si
    elapsed = 0
    current = tonumber(s[2]) or 0
    previous = tonumber(s[3]) or 0
  end
end
local weighted = previous * (w - elapsed)
local allowed = weighted + (current + 1) * w <= max * w
if allowed then current = current + 1 end
local reset = 0
if current > 0 then
  reset = 2 * w - elapsed
elseif previous > 0 then
  reset = w - elapsed
end
if allowed then
  local remaining = math.max(0, math.floor((max * w - weighted - current * w) / w))
  redis.call('HSET', KEYS[1], 'i', index, 'c', current, 'p', previous)
  redis.call('PEXPIRE', KEYS[1], 2 * w)
  return reply(1, remaining, reset, 0)
end
local retry = -1
if current < max and previous > 0 then
  local at = w - math.floor((max - current - 1) * w / previous)
  if at < w then retry = at - elapsed end
end
if retry < 0 then
  local at = 0
  if current > 0 then at = w - math.floor((max - 1) * w / current) end
  retry = w - elapsed + at
end
return reply(0, 0, reset, retry)
`

export const TOKEN_BUCKET_LUA = `${PRELUDE}
local capacity = max * w
local level = capacity
local at = now
local s = redis.call('HMGET', KEYS[1], 'l', 't')
local sl = tonumber(s[1])
local st = tonumber(s[2])
if sl ~= nil and st ~= nil then
  if now < st then at = st end
  local elapsed = at - st
  if elapsed >= w then
    level = capacity
  else
    level = math.min(capacity, sl + elapsed * max)
  end
end
if level >= w then
  level = level - w
  redis.call('HSET', KEYS[1], 'l', level, 't', at)
  redis.call('PEXPIRE', KEYS[1], w)
  return reply(1, math.floor(level / w), math.ceil((capacity - level) / max), 0)
end
return reply(0, 0, math.ceil((capacity - level) / max), math.ceil((w - level) / max))
`
