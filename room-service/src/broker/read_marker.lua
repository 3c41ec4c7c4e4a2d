-- Moves a user's read marker in one room up (never down) and drops the
-- mentions it passes, in one step: two tabs reading at once can only ever
-- raise it, and no mention at or below the marker outlives the move.
-- KEYS: 1 read hash (room -> read seq), 2 joined hash (room -> joined at ms),
--       3 the room's mentions zset (seqs, scored by seq).
-- ARGV: 1 room, 2 seq.
-- Returns false (nil) when the room is not the user's; else
-- {read seq, joined at ms, mention seqs above the marker, ascending}.
-- Seqs stay strings here: Lua numbers are doubles, and tostring would print
-- a large one as 1e+15.
local marker = redis.call('HGET', KEYS[1], ARGV[1])
if not marker then
  return false
end
if tonumber(ARGV[2]) > tonumber(marker) then
  marker = ARGV[2]
  redis.call('HSET', KEYS[1], ARGV[1], marker)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', marker)
local joined = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
return {marker, joined, redis.call('ZRANGE', KEYS[3], 0, -1)}
