-- Forget the token of a name. KEYS: the id hash, the name hash. ARGV: the name.
-- Returns 1, or 0 when no token has that name.
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], id)
return 1
