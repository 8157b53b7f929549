-- A token bucket shared by every API process: take `cost` tokens from the bucket KEYS[1].
--
-- ARGV[1]: refill rate, tokens per second; ARGV[2]: capacity (the burst); ARGV[3]: cost.
-- The bucket starts full, refills continuously up to its capacity, and a request that
-- finds fewer than `cost` tokens takes none. Time is the Redis server's (TIME), so API
-- processes with different clocks share one consistent bucket.
-- Returns {1, 0} when allowed, {0, ms} when refused: ms until `cost` tokens are back.
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local state = redis.call('HMGET', KEYS[1], 'tokens', 'us')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - last) * rate / 1000000)
end

local allowed = 0
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'us', tostring(now))
-- A bucket left alone refills completely within capacity / rate seconds: then it is the
-- same as no bucket, so let it go.
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return {allowed, wait_ms}
