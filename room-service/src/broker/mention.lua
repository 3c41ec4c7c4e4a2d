-- Records that message ARGV[2] of room ARGV[1] mentions the user, if the
-- room is theirs and the message is above their marker (a mention they have
-- read already, or in a room they left, is no news). Keeps the newest
-- ARGV[3] mentions of the room: a bound for a user who never reads.
-- KEYS: 1 read hash (room -> read seq), 2 the room's mentions zset.
-- Returns 1 when recorded, 0 when not.
local marker = redis.call('HGET', KEYS[1], ARGV[1])
if not marker or tonumber(ARGV[2]) <= tonumber(marker) then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
return 1
