-- Seeds a room Redis has no numbering for (lost by a restart, FLUSHALL,
-- eviction or the room TTL; or new): sets its epoch and the last sequence
-- number given out, so the next message is one above it. Only if the epoch
-- is still missing: two room-services seeding the same room at once race
-- here, one wins and the other changes nothing (and retries its call,
-- which finds the winner's epoch). A sequence still standing higher (the
-- epoch alone was evicted) is kept, so no number is given out twice.
--
-- KEYS: 1 epoch, 2 seq
-- ARGV: 1 epoch, 2 last seq given out, 3 room ttl seconds
-- Returns 1 if it seeded the room, 0 if the room had an epoch already.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = ARGV[2]
local standing = redis.call('GET', KEYS[2])
if standing and tonumber(standing) > tonumber(seq) then seq = standing end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], seq, 'EX', ARGV[3])
return 1
