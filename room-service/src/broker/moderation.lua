-- Changes one user's standing in one room (moderation.rs) and finds their
-- members in it, in one step, so a ban and the list of members it removes
-- agree: a join applied after this step is refused (presence.lua reads the
-- same hash), one applied before is in the list.
--
-- KEYS: 1 moderation hash, 2 members hash
-- ARGV: 1 op ("mute", "unmute", "ban", "unban", "role", "kick"),
--       2 user id, 3 value (mute: until ms; role: "moderator" or "member"),
--       4 ttl seconds (the room's)
-- Returns the ids of the user's members in the room (for kick and ban;
-- empty for the others).
local op, user, value = ARGV[1], ARGV[2], ARGV[3]
if op == 'mute' then
  redis.call('HSET', KEYS[1], 'mute:' .. user, value)
elseif op == 'unmute' then
  redis.call('HDEL', KEYS[1], 'mute:' .. user)
elseif op == 'ban' then
  redis.call('HSET', KEYS[1], 'ban:' .. user, '1')
elseif op == 'unban' then
  redis.call('HDEL', KEYS[1], 'ban:' .. user)
elseif op == 'role' then
  if value == 'moderator' then
    redis.call('HSET', KEYS[1], 'role:' .. user, value)
  else
    redis.call('HDEL', KEYS[1], 'role:' .. user)
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
local ids = {}
if op == 'kick' or op == 'ban' then
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).i == user then ids[#ids + 1] = all[i] end
  end
end
return ids
