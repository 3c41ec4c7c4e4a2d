-- Records a direct conversation unless one by that name exists: as a whole,
-- so of two people opening it at once one creates it and the other finds it.
-- KEYS: 1 the conversation's hash (user id -> name).
-- ARGV: user id, name, user id, name, ... (at least one pair).
-- Returns 1 when this call created it, 0 when it was there (or no members).
if #ARGV < 2 or redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
