-- Stores one room event atomically: applies its change (message checks,
-- join, leave), gives it the room's next sequence number, appends it to the
-- bounded history stream and publishes it on the room's channel. Because it
-- is one script, every reader of the channel and of the history sees the
-- same order, and nothing is published that history does not hold.
--
-- KEYS: 1 seq, 2 history stream, 3 epoch, 4 members hash, 5 presence zset,
--       6 rooms set (on a cluster, the one in the room's slot),
--       7 dedupe key ("" or KEYS[1] when unused)
-- ARGV: 1 change (message|join|leave), 2 channel, 3 event body (protobuf),
--       4 history length, 5 epoch to use if the room has none, 6 room name,
--       7 member id, 8 member record (join), 9 expires-at ms (join) or
--       only-if-expired-at ms (leave, "" for always), 10 dedupe ttl seconds,
--       11 room ttl seconds (a room with no stored event for this long is
--       forgotten: history, sequence, epoch and presence), 12 the publish
--       command (PUBLISH; SPUBLISH on a Redis Cluster)
-- Returns {"ok", payload}, {"dup", payload}, {"not_member"} or {"absent"}.
-- On a Redis Cluster every declared key must be in the room's slot, even an
-- unused one ("" is in slot 0), so an unused dedupe key comes as KEYS[1].
if KEYS[7] == KEYS[1] then KEYS[7] = '' end
local change = ARGV[1]
local member_id = ARGV[7]

if change == 'message' then
  if member_id ~= '' and redis.call('HEXISTS', KEYS[4], member_id) == 0 then
    return {'not_member'}
  end
  if KEYS[7] ~= '' then
    local first = redis.call('GET', KEYS[7])
    if first then return {'dup', first} end
  end
elseif change == 'join' then
  redis.call('HSET', KEYS[4], member_id, ARGV[8])
  redis.call('ZADD', KEYS[5], ARGV[9], member_id)
elseif change == 'leave' then
  local expires = redis.call('ZSCORE', KEYS[5], member_id)
  if redis.call('HEXISTS', KEYS[4], member_id) == 0 then return {'absent'} end
  if ARGV[9] ~= '' and expires and tonumber(expires) > tonumber(ARGV[9]) then
    return {'absent'}
  end
  redis.call('HDEL', KEYS[4], member_id)
  redis.call('ZREM', KEYS[5], member_id)
end

local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', KEYS[3], epoch)
end
redis.call('SADD', KEYS[6], ARGV[6])
local seq = redis.call('INCR', KEYS[1])
local payload = seq .. ':' .. epoch .. ':' .. ARGV[3]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-1', 'e', payload)
redis.call(ARGV[12], ARGV[2], payload)
if change == 'message' and KEYS[7] ~= '' then
  redis.call('SET', KEYS[7], payload, 'EX', ARGV[10])
end
for i = 1, 5 do
  redis.call('EXPIRE', KEYS[i], ARGV[11])
end
return {'ok', payload}
