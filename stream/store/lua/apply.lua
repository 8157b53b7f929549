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
-- KEYS[1] applied hash, KEYS[2] window meta hash, KEYS[3..] every other key the call
-- touches, named by index in the payload: per-repo hashes, window and all-time zsets,
-- day zsets, dedupe sets. All of them carry the shard's hash tag: one slot.
-- ARGV[1] msgpack payload: {parts, expire, types, incr}
--   parts  {{field, from, to}, ...}
--   expire {{key idx, expire-at unix s}, ...}
--   types  {{type, window key idx, all-time key idx}, ...}
--   incr   {{type, repo hash idx, day zset idx, member, day, n, members}, ...}
--          where members, when not empty, is a dataset day's {{dedupe set idx, digest}, ...}:
--          it adds one per digest not yet in its 5-minute bucket set (n is then 0).
-- Returns {'ok', counted, duplicates} | {'dup'} | {'conflict', marker1, marker2, ...}.

local applied = KEYS[1]
local payload = cmsgpack.unpack(ARGV[1])
local parts, expire, types, incr = payload[1], payload[2], payload[3], payload[4]

local markers = {}
local fresh, stale = 0, 0
for i, part in ipairs(parts) do
  local m = tonumber(redis.call('HGET', applied, part[1]) or '-1')
  if m >= part[3] then stale = stale + 1 elseif m < part[2] then fresh = fresh + 1 end
  markers[i] = m
end
if stale == #parts then return {'dup'} end
if fresh ~= #parts then
  local out = {'conflict'}
  for i = 1, #parts do out[i + 1] = markers[i] end
  return out
end

local window, alltime, wstart, wend = {}, {}, {}, {}
for _, t in ipairs(types) do
  local name = t[1]
  window[name], alltime[name] = KEYS[t[2]], KEYS[t[3]]
  local bounds = redis.call('HMGET', KEYS[2], name .. ':start', name .. ':end')
  wstart[name], wend[name] = bounds[1], bounds[2]
end

local counted, duplicates = 0, 0
for _, e in ipairs(incr) do
  local t, repo, dayset, member, day, n, members = e[1], KEYS[e[2]], KEYS[e[3]], e[4], e[5], e[6], e[7]
  if #members > 0 then
    n = 0
    for _, m in ipairs(members) do
      n = n + redis.call('SADD', KEYS[m[1]], m[2])
    end
    duplicates = duplicates + #members - n
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

-- Expiries last, once the keys exist.
for _, x in ipairs(expire) do redis.call('EXPIREAT', KEYS[x[1]], x[2]) end
for i, part in ipairs(parts) do redis.call('HSET', applied, part[1], part[3]) end
return {'ok', counted, duplicates}
