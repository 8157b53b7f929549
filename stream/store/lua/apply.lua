-- Apply one batch's increments for one shard, exactly once.
--
-- Every key lives in the shard's hash slot. The shard's 'applied' hash keeps, per source
-- partition ("topic:partition"), the last offset whose effects are in this shard. A call
-- carries the offset range [from, to] of every partition in its batch: when all ranges
-- lie after their markers the increments are applied and the markers advance to 'to';
-- when all lie at or before them the call is a replay and nothing changes; any other
-- mix means the batch straddles a marker, and the caller must re-tally the events after
-- the returned markers. So a replayed or concurrent (zombie) batch never counts twice.
--
-- KEYS[1] applied hash, KEYS[2] window meta hash, KEYS[3..] keys named by index below.
-- ARGV: nparts, {field, from, to}*,
--       nexpire, {key idx, expire-at (unix s)}*,
--       ntypes, {type, window key idx, all-time key idx}*,
--       nincr, {type, repo key idx, day zset idx, member, day, n, nmembers, {seen idx, dedupe member}*}*
-- An increment with nmembers > 0 is a dataset (day) whose n is ignored: it adds one per
-- dedupe member not seen before in its 5-minute bucket set.
-- Returns {'ok', counted, duplicates} | {'dup'} | {'conflict', marker1, marker2, ...}.

local applied = KEYS[1]
local a = 1
local nparts = tonumber(ARGV[a]); a = a + 1
local fields, tos, markers = {}, {}, {}
local fresh, stale = 0, 0
for i = 1, nparts do
  local field, from, to = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local m = tonumber(redis.call('HGET', applied, field) or '-1')
  if m >= to then stale = stale + 1 elseif m < from then fresh = fresh + 1 end
  fields[i], tos[i], markers[i] = field, to, m
end
if stale == nparts then return {'dup'} end
if fresh ~= nparts then
  local out = {'conflict'}
  for i = 1, nparts do out[i + 1] = markers[i] end
  return out
end

-- Expiries are set at the end, once the keys exist.
local nexpire = tonumber(ARGV[a]); a = a + 1
local expire_from = a
a = a + 2 * nexpire

local ntypes = tonumber(ARGV[a]); a = a + 1
local window, alltime, wstart, wend = {}, {}, {}, {}
for _ = 1, ntypes do
  local t = ARGV[a]
  window[t], alltime[t] = KEYS[tonumber(ARGV[a + 1])], KEYS[tonumber(ARGV[a + 2])]
  local bounds = redis.call('HMGET', KEYS[2], t .. ':start', t .. ':end')
  wstart[t], wend[t] = bounds[1], bounds[2]
  a = a + 3
end

local counted, duplicates = 0, 0
local nincr = tonumber(ARGV[a]); a = a + 1
for _ = 1, nincr do
  local t, repo, dayset, member, day = ARGV[a], KEYS[tonumber(ARGV[a + 1])], KEYS[tonumber(ARGV[a + 2])], ARGV[a + 3], ARGV[a + 4]
  local n, nmembers = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  a = a + 7
  if nmembers > 0 then
    n = 0
    for _ = 1, nmembers do
      n = n + redis.call('SADD', KEYS[tonumber(ARGV[a])], ARGV[a + 1])
      a = a + 2
    end
    duplicates = duplicates + nmembers - n
  end
  if n > 0 then
    redis.call('HINCRBY', repo, day, n)
    redis.call('HINCRBY', repo, 'all', n)
    redis.call('ZINCRBY', dayset, n, member)
    redis.call('ZINCRBY', alltime[t], n, member)
    if wstart[t] and day >= wstart[t] and day <= wend[t] then
      redis.call('ZINCRBY', window[t], n, member)
    end
    counted = counted + n
  end
end

for i = 0, nexpire - 1 do
  local at = expire_from + 2 * i
  redis.call('EXPIREAT', KEYS[tonumber(ARGV[at])], ARGV[at + 1])
end
for i = 1, nparts do redis.call('HSET', applied, fields[i], tos[i]) end
return {'ok', counted, duplicates}
