-- Move one shard's rolling 30-day leaderboard of one repo type to a new window.
--
-- The window zset always equals the sum of the day zsets of the days in
-- [start, end] (kept in the meta hash), because apply.lua adds to it only the days
-- inside that range. Moving the window subtracts the days that leave it and adds the
-- days that enter it, in one atomic step.
--
-- KEYS[1] meta hash, KEYS[2] window zset, KEYS[3..] day zsets: first nsub leaving, then entering.
-- ARGV: type, expected current start ('' when none), new start, new end, nsub
-- Returns 'ok', or 'moved' when the current start is not the expected one (re-read, retry).

local t = ARGV[1]
local current = redis.call('HGET', KEYS[1], t .. ':start') or ''
if current ~= ARGV[2] then return 'moved' end
if current == '' then redis.call('DEL', KEYS[2]) end
local nsub = tonumber(ARGV[5])
local nkeys = #KEYS - 2
if nkeys > 0 then
  local args = {'ZUNIONSTORE', KEYS[2], nkeys + 1, KEYS[2]}
  for i = 3, #KEYS do args[#args + 1] = KEYS[i] end
  args[#args + 1] = 'WEIGHTS'
  args[#args + 1] = 1
  for i = 1, nkeys do args[#args + 1] = (i <= nsub) and -1 or 1 end
  redis.call(unpack(args))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', 0)
end
redis.call('HSET', KEYS[1], t .. ':start', ARGV[3], t .. ':end', ARGV[4])
return 'ok'
