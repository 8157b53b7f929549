-- Apply (or undo) one chunk of a recount's shadow generation to the live counters of one
-- shard, atomically and once: the chunk's state in the recount's state hash says whether
-- it is applied ('a') or undone ('u'); applying an applied chunk, or undoing one that is
-- not applied, changes nothing. So an interrupted --apply or --undo is simply run again.
--
-- Changes are differences (new rules minus old rules, over the events before the
-- fence): adding them commutes with the live worker's own increments, so it keeps
-- counting meanwhile. A field or member brought to 0 is deleted, as if never counted.
-- A breakdown hash (its uncounted p: fields included) already folded to its top values (a closed day) takes
-- a difference for a value it no longer holds on its dimension's "other" field; the
-- caller folds it again afterwards. Downloaders (HyperLogLog) cannot be subtracted: a
-- closed day's are replaced by the recount's (the old ones saved, for undo), an open
-- day's take the recount's as a union.
--
-- KEYS[1] the recount's state hash, KEYS[2] window meta hash, KEYS[3] rules-versions hash,
-- KEYS[4..] the keys of the entries, by index (every key of the shard's slot).
-- ARGV[1] msgpack {sign, chunk, version, keep until (unix s), entries}; sign 1 applies, -1 undoes
--   entry {type, repo idx, member, day, delta, day zset idx, all-time idx, w30 idx,
--          day zset expire-at, bd idx, {field, n, ...}, analytics expire-at, nc idx (the breakdown
--          hash again, for its p: fields), {field, n, ...}, its expire-at, nc day index idx, library,
--          hll idx, shadow hll idx, saved hll idx, closed, folded}
--   (an idx of 0: no such key: the day is past its keys' lifetime, or there is nothing to change)
-- Returns the downloads added (negative when removed).

local state, meta, rules = KEYS[1], KEYS[2], KEYS[3]
local p = cmsgpack.unpack(ARGV[1])
local sign, chunk, version, keep, entries = p[1], p[2], p[3], p[4], p[5]
local done = redis.call('HGET', state, chunk)
if (sign > 0 and done == 'a') or (sign < 0 and done ~= 'a') then return 0 end

local function hadd(key, field, n, folded)
  if folded and redis.call('HEXISTS', key, field) == 0 then field = string.sub(field, 1, 2) end
  if redis.call('HINCRBY', key, field, n) == 0 then redis.call('HDEL', key, field) end
end

local function zadd(key, n, member)
  if tonumber(redis.call('ZINCRBY', key, n, member)) == 0 then redis.call('ZREM', key, member) end
end

local bounds, versioned, total = {}, {}, 0
for _, e in ipairs(entries) do
  local t, repo, member, day, d = e[1], KEYS[e[2]], e[3], e[4], sign * e[5]
  local folded = e[22]
  if d ~= 0 then
    hadd(repo, day, d)
    hadd(repo, 'all', d)
    if e[6] > 0 then
      zadd(KEYS[e[6]], d, member)
      redis.call('EXPIREAT', KEYS[e[6]], e[9])
    end
    zadd(KEYS[e[7]], d, member)
    if not bounds[t] then bounds[t] = redis.call('HMGET', meta, t .. ':start', t .. ':end') end
    local w = bounds[t]
    if w[1] and day >= w[1] and day <= w[2] then zadd(KEYS[e[8]], d, member) end
    total = total + d
  end
  if e[10] > 0 then
    local bd, fields = KEYS[e[10]], e[11]
    for i = 1, #fields, 2 do hadd(bd, fields[i], sign * fields[i + 1], folded) end
    if redis.call('EXISTS', bd) == 1 then redis.call('EXPIREAT', bd, e[12]) end
  end
  if e[13] > 0 then
    local nc, fields = KEYS[e[13]], e[14]
    for i = 1, #fields, 2 do hadd(nc, fields[i], sign * fields[i + 1], folded) end
    -- Paths left: the library that judged them, and the model in the day's index (a model
    -- with none left keeps both: harmless, and what the workers remember having written).
    local paths = false
    for _, name in ipairs(redis.call('HKEYS', nc)) do
      if string.sub(name, 1, 2) == 'p:' then paths = true break end
    end
    if paths then
      redis.call('HSET', nc, 'l', e[17])
      redis.call('SADD', KEYS[e[16]], member)
      redis.call('EXPIREAT', nc, e[15])
      redis.call('EXPIREAT', KEYS[e[16]], e[15])
    end
  end
  if e[18] > 0 then
    local live, shadow, saved, closed = KEYS[e[18]], e[19] > 0 and KEYS[e[19]], KEYS[e[20]], e[21]
    if sign > 0 then
      if closed then
        if redis.call('EXISTS', live) == 1 then
          redis.call('COPY', live, saved, 'REPLACE')
          redis.call('EXPIREAT', saved, keep)
        else
          redis.call('DEL', saved)
        end
        if shadow then redis.call('COPY', shadow, live, 'REPLACE') else redis.call('DEL', live) end
      elseif shadow then
        redis.call('PFMERGE', live, live, shadow)
      end
      if redis.call('EXISTS', live) == 1 then redis.call('EXPIREAT', live, e[12]) end
    elseif closed then
      if redis.call('EXISTS', saved) == 1 then
        redis.call('COPY', saved, live, 'REPLACE')
        redis.call('EXPIREAT', live, e[12])
      else
        redis.call('DEL', live)
      end
    end
  end
  versioned[t .. '/' .. day] = true
end

-- Which versions counted each day: the new one joins; an undo puts back what was there.
for name in pairs(versioned) do
  if sign > 0 then
    local have = redis.call('HGET', rules, name)
    redis.call('HSETNX', state, 'rv:' .. name, have or '')
    if not have then
      redis.call('HSET', rules, name, version)
    elseif not string.find(' ' .. have .. ' ', ' ' .. version .. ' ', 1, true) then
      redis.call('HSET', rules, name, have .. ' ' .. version)
    end
  else
    local was = redis.call('HGET', state, 'rv:' .. name)
    if was == '' then redis.call('HDEL', rules, name) elseif was then redis.call('HSET', rules, name, was) end
  end
end

redis.call('HSET', state, chunk, sign > 0 and 'a' or 'u')
redis.call('EXPIREAT', state, keep)
return total
