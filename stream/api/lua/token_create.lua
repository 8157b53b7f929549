-- Store a new token under a name no other token has. KEYS: the id hash, the name hash
-- (one slot: hash tag {tokens}). ARGV: id, name, the token's JSON record.
-- Returns 1, or 0 when the name is taken (nothing is written then).
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
