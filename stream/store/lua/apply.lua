-- Apply one batch's increments for one shard, exactly once.
--
-- Every key lives in the shard's hash slot. The shard's 'pos' hash keeps, per source
-- partition ("topic:partition"), the fetch position up to which this shard holds every
-- record's effects. A call carries, per partition in its batch, the positions [from, to)
-- it covers (the previous batch ended at 'from'; 'to' is just past its last record) and
-- 'base', what a missing marker stands for. With m the shard's marker:
--   m == from for every partition: fresh, applied, the markers move to 'to';
--   m >= to for every partition: a replay, nothing changes;
--   m < from for any partition: Redis lost writes (or the shard lost everything: no
--     marker, and 'from' is not 'base'); nothing is applied and the markers go back to
--     the caller, who counts again from them ({'gap', ...});
--   anything else straddles a marker: the caller re-tallies the events from the returned
--     markers ({'conflict', ...}).
-- So a replayed or concurrent (zombie) batch never counts twice, and a lost write is
-- never skipped over.
--
-- KEYS[1] pos hash, KEYS[2] window meta hash, KEYS[3] rules-versions hash, KEYS[4..] every
-- other key the call touches, named by index in the payload: per-repo hashes, window and all-time zsets,
-- day zsets, dedupe sets. All of them carry the shard's hash tag: one slot.
-- ARGV[1] msgpack payload: {parts, expire, types, incr, uncounted, version}
--   parts  {{field, from, to, base}, ...}
--   expire {{key idx, expire-at unix s}, ...}
--   types  {{type, window key idx, all-time key idx}, ...}
--   incr   {{type, repo hash idx, day zset idx, member, day, n, members, bd idx, hll idx, fields, users}, ...}
--          where members, when not empty, is a dataset day's {{dedupe set idx, digest[, 4 fields]}, ...}:
--          it adds one per digest not yet in its 5-minute bucket set (n is then 0), and
--          that download's four breakdown fields and its digest (the downloader) when given.
--          With analytics (bd idx > 0), a model's fields {field = n, ...} add to the day's
--          breakdown hash and its users to the day's HyperLogLog of downloaders.
--   uncounted {{breakdown idx, {field = n, ...}[, library, day index idx, repo]}, ...}: model
--          candidates that did not count, by path (p: fields of the day's breakdown hash); the
--          first time a worker writes a model-day, also its library (l) and the model in that
--          day's index of such models.
--   version   the rules version that judged the batch ('' records none): the rules hash
--          keeps, per partition, the version of its last batch and, where that changes,
--          '<partition>@<from>' -> the version counting from there (the switch point); and
--          per '<type>/<day>' the versions that counted downloads there.
-- Returns {'ok', counted, duplicates} | {'dup'} | {'gap' | 'conflict', marker1, marker2, ...}
-- (a missing marker is returned as -1).

local pos = KEYS[1]
local payload = cmsgpack.unpack(ARGV[1])
local parts, expire, types, incr, uncounted, version = payload[1], payload[2], payload[3], payload[4], payload[5],
  payload[6] or ''

local markers, stored = {}, {}
local fresh, stale, gap = 0, 0, false
for i, part in ipairs(parts) do
  local found = redis.call('HGET', pos, part[1])
  local m = found and tonumber(found) or part[4]
  markers[i], stored[i] = m, found and m or -1
  if m < part[2] then gap = true
  elseif m == part[2] then fresh = fresh + 1
  elseif m >= part[3] then stale = stale + 1 end
end
if gap or fresh ~= #parts then
  if not gap and stale == #parts then return {'dup'} end
  -- a gap reports what is stored (-1: nothing), a straddle where to count again from
  local out, from = {gap and 'gap' or 'conflict'}, gap and stored or markers
  for i = 1, #parts do out[i + 1] = from[i] end
  return out
end

local window, alltime, wstart, wend = {}, {}, {}, {}
for _, t in ipairs(types) do
  local name = t[1]
  window[name], alltime[name] = KEYS[t[2]], KEYS[t[3]]
  local bounds = redis.call('HMGET', KEYS[2], name .. ':start', name .. ':end')
  wstart[name], wend[name] = bounds[1], bounds[2]
end

-- PFADD in slices: unpack() of a long list would overflow Lua's stack.
local function add_downloaders(hll, users)
  for i = 1, #users, 500 do
    redis.call('PFADD', hll, unpack(users, i, math.min(i + 499, #users)))
  end
end

local counted, duplicates = 0, 0
local counted_days = {}  -- type -> {day -> true}: where this batch counted downloads
for _, e in ipairs(incr) do
  local t, repo, dayset, member, day, n, members = e[1], KEYS[e[2]], KEYS[e[3]], e[4], e[5], e[6], e[7]
  local bd, hll = e[8] > 0 and KEYS[e[8]], e[9] > 0 and KEYS[e[9]]
  if #members > 0 then
    n = 0
    local new = {}
    for _, m in ipairs(members) do
      if redis.call('SADD', KEYS[m[1]], m[2]) == 1 then
        n = n + 1
        if bd then
          for i = 3, 6 do redis.call('HINCRBY', bd, m[i], 1) end
          new[#new + 1] = m[2]
        end
      end
    end
    if hll and #new > 0 then add_downloaders(hll, new) end
    duplicates = duplicates + #members - n
  elseif bd then
    for name, by in pairs(e[10]) do redis.call('HINCRBY', bd, name, by) end
    if #e[11] > 0 then add_downloaders(hll, e[11]) end
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
    local days = counted_days[t]
    if not days then days = {}; counted_days[t] = days end
    days[day] = true
  end
end

for _, u in ipairs(uncounted) do
  local key = KEYS[u[1]]
  for name, by in pairs(u[2]) do redis.call('HINCRBY', key, name, by) end
  if u[3] then
    redis.call('HSET', key, 'l', u[3])
    redis.call('SADD', KEYS[u[4]], u[5])
  end
end

if version ~= '' then
  local rules = KEYS[3]
  for t, days in pairs(counted_days) do
    for day in pairs(days) do
      local field = t .. '/' .. day
      local have = redis.call('HGET', rules, field)
      if not have then
        redis.call('HSET', rules, field, version)
      elseif not string.find(' ' .. have .. ' ', ' ' .. version .. ' ', 1, true) then
        redis.call('HSET', rules, field, have .. ' ' .. version)
      end
    end
  end
  local names = {}
  for i, part in ipairs(parts) do names[i] = part[1] end
  local current = redis.call('HMGET', rules, unpack(names))
  for i, part in ipairs(parts) do
    if current[i] ~= version then
      redis.call('HSET', rules, part[1], version, part[1] .. '@' .. part[2], version)
    end
  end
end

-- Expiries last, once the keys exist.
for _, x in ipairs(expire) do redis.call('EXPIREAT', KEYS[x[1]], x[2]) end
for _, part in ipairs(parts) do redis.call('HSET', pos, part[1], part[3]) end
return {'ok', counted, duplicates}
