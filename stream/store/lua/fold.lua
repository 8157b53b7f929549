-- Fold closed days' breakdowns to their top values, so a repo-day keeps a bounded number.
--
-- A breakdown hash holds fields <prefix><value> per dimension (c:, k:, g:, f:) and an
-- uncounted hash p:<path> (and l, the library); a prefix alone holds what earlier folds
-- summed up ("other"). Each dimension keeps its `top` values with most downloads (ties:
-- the smaller value), and the rest is added to its prefix field and deleted. A hash that
-- is already folded is left as it is, so running this twice changes nothing.
--
-- KEYS[1..]: breakdown and uncounted hashes (one shard's slot)
-- ARGV[1]: top values kept per breakdown dimension; ARGV[2]: top paths kept per uncounted hash
-- Returns the number of fields folded away.

local top, top_uncounted = tonumber(ARGV[1]), tonumber(ARGV[2])
local DIMENSIONS = {['c:'] = true, ['k:'] = true, ['g:'] = true, ['f:'] = true, ['p:'] = true}

local function fold(key)
  local all = redis.call('HGETALL', key)
  local groups = {}
  for i = 1, #all, 2 do
    local field = all[i]
    local prefix = string.sub(field, 1, 2)
    if DIMENSIONS[prefix] and #field > 2 then
      groups[prefix] = groups[prefix] or {}
      table.insert(groups[prefix], {field, tonumber(all[i + 1])})
    end
  end
  local folded = 0
  for prefix, items in pairs(groups) do
    local keep = prefix == 'p:' and top_uncounted or top
    if #items > keep then
      table.sort(items, function(a, b)
        if a[2] ~= b[2] then return a[2] > b[2] end
        return a[1] < b[1]
      end)
      local rest, gone = 0, {}
      for i = keep + 1, #items do
        rest = rest + items[i][2]
        gone[#gone + 1] = items[i][1]
      end
      for i = 1, #gone, 500 do
        redis.call('HDEL', key, unpack(gone, i, math.min(i + 499, #gone)))
      end
      redis.call('HINCRBY', key, prefix, rest)
      folded = folded + #gone
    end
  end
  return folded
end

local folded = 0
for _, key in ipairs(KEYS) do folded = folded + fold(key) end
return folded
