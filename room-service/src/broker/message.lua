-- Stores one message atomically: checks that the sender is in the room and
-- takes its name from the member record, gives the message the room's next
-- sequence number, appends it to the bounded history stream and publishes
-- it on the room's channel. One script, so every reader of the channel and
-- of the history sees the same order, nothing is published that history
-- does not hold, and a send costs one round trip to Redis whatever the size
-- of the room.
--
-- KEYS: 1 seq, 2 history stream, 3 epoch, 4 members hash, 5 presence zset,
--       6 roster zset, 7 rooms set (on a cluster, the one in the room's
--       slot), 8 dedupe key (KEYS[1] when unused: on a cluster every key
--       named must be in the room's slot, and "" is not)
-- ARGV: 1 channel, 2 event body (protobuf, sender name left out),
--       3 history length, 4 epoch to use if the room has none, 5 room name,
--       6 member id ("" for a system message), 7 dedupe ttl seconds,
--       8 room ttl seconds (a room with no event for this long is forgotten),
--       9 the publish command (PUBLISH; SPUBLISH on a Redis Cluster)
-- Returns {"ok", payload}, {"dup", payload} or {"not_member"}; the payload
-- is `<seq>:<epoch>:<name length>:<name><body>` (see envelope.rs).
if KEYS[8] == KEYS[1] then KEYS[8] = '' end
local member_id = ARGV[6]
local name = 'system'
if member_id ~= '' then
  local record = redis.call('HGET', KEYS[4], member_id)
  if not record then return {'not_member'} end
  name = cjson.decode(record).u
end
if KEYS[8] ~= '' then
  local first = redis.call('GET', KEYS[8])
  if first then return {'dup', first} end
end

local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[3], epoch)
end
redis.call('SADD', KEYS[7], ARGV[5])
local seq = redis.call('INCR', KEYS[1])
local payload = seq .. ':' .. epoch .. ':' .. #name .. ':' .. name .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-1', 'e', payload)
redis.call(ARGV[9], ARGV[1], payload)
if KEYS[8] ~= '' then
  redis.call('SET', KEYS[8], payload, 'EX', ARGV[7])
end
for i = 1, 6 do
  redis.call('EXPIRE', KEYS[i], ARGV[8])
end
return {'ok', payload}
