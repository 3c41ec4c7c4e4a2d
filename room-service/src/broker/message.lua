-- Stores messages of one sender atomically: checks that the sender is in
-- the room and takes its name from the member record, then for each message
-- (in order) gives it the room's next sequence number, appends it to the
-- bounded history stream and publishes it on the room's channel. One script,
-- so every reader of the channel and of the history sees the same order,
-- nothing is published that history does not hold, and a send costs one
-- round trip to Redis whatever the size of the room — a batch too.
--
-- KEYS: 1 seq, 2 history stream, 3 epoch, 4 members hash, 5 presence zset,
--       6 roster zset, 7 rooms set (on a cluster, the one in the room's
--       slot), 8 moderation hash (moderation.rs), 9.. one dedupe key per
--       message (KEYS[1] when unused: on a cluster every key named must be
--       in the room's slot, and "" is not)
-- ARGV: 1 channel, 2 history length, 3 epoch to use if the room has none
--       ("": start none, the room-service seeds rooms from its store),
--       4 room name, 5 member id ("" for a system message), 6 dedupe ttl
--       seconds, 7 room ttl seconds (a room with no event for this long is
--       forgotten), 8 the publish command (PUBLISH; SPUBLISH on a Redis
--       Cluster), 9.. one event body per message (protobuf, sender name
--       left out)
-- Returns a reply tagged by its first value (read in message_reply.rs):
-- {"stored", payloads, repeats}: per message, the stored message (or the
-- first one stored under its dedupe key) and 1 if it was that repeat, else
-- 0; or {"not_member"}, storing nothing; or {"muted", until ms}: a
-- moderator muted the sender's user, storing nothing; or {"unseeded"}: the room has no
-- epoch and ARGV[3] is "", storing nothing. A payload is
-- `<seq>:<epoch>:<name length>:<name><body>` (see envelope.rs).
local member_id = ARGV[5]
local name = 'system'
if member_id ~= '' then
  local record = redis.call('HGET', KEYS[4], member_id)
  if not record then return {'not_member'} end
  local held = cjson.decode(record)
  name = held.u
  if held.i and held.i ~= '' then
    local muted = redis.call('HGET', KEYS[8], 'mute:' .. held.i)
    if muted then
      local now = redis.call('TIME')
      if tonumber(muted) > tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) then
        return {'muted', muted}
      end
    end
  end
end

local epoch = redis.call('GET', KEYS[3])
if not epoch then
  -- Redis lost the room (or it is new): with a store, where its numbering
  -- goes on from is the room-service's to say (seed.lua), not a fresh start.
  if ARGV[3] == '' then return {'unseeded'} end
  epoch = ARGV[3]
  redis.call('SET', KEYS[3], epoch)
end
redis.call('SADD', KEYS[7], ARGV[4])
local prefix = ':' .. epoch .. ':' .. #name .. ':' .. name
local stored, repeats = {}, {}
for i = 9, #ARGV do
  local dedupe = KEYS[i]
  if dedupe == KEYS[1] then dedupe = nil end
  local payload = dedupe and redis.call('GET', dedupe)
  repeats[#repeats + 1] = payload and 1 or 0
  if not payload then
    local seq = redis.call('INCR', KEYS[1])
    payload = seq .. prefix .. ARGV[i]
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-1', 'e', payload)
    redis.call(ARGV[8], ARGV[1], payload)
    if dedupe then redis.call('SET', dedupe, payload, 'EX', ARGV[6]) end
  end
  stored[#stored + 1] = payload
end
for i = 1, 6 do
  redis.call('EXPIRE', KEYS[i], ARGV[7])
end
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('EXPIRE', KEYS[8], ARGV[7]) end
return {'stored', stored, repeats}
