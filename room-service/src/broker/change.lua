-- Changes one stored message (edit, delete, react, unreact) and stores the
-- change as an event of its own: checks that the actor is in the room and
-- takes its name and user from the member record, checks the message is in
-- the room's current history and not deleted, updates the message's state
-- (the same rule as `MessageState::change` in message_state.rs), gives the
-- change the room's next sequence number, appends it to the history and
-- publishes it. One script, so a change is ordered with messages exactly
-- like a message, and concurrent reactions to one message count right.
--
-- KEYS: 1 seq, 2 history stream, 3 epoch, 4 members hash, 5 the message's
--       state (JSON string), 6 the message's reactions (set of
--       "<emoji>\0<user id>")
-- ARGV: 1 channel, 2 history length, 3 room ttl seconds, 4 the publish
--       command, 5 actor member id, 6 op (edit, delete, react, unreact),
--       7 target seq, 8 target epoch, 9 ts ms, 10 text (edit) or emoji
--       (react, unreact), 11 the message's state as the caller read it
--       (JSON; used when this Redis has none, e.g. it was read from the
--       store), 12 most distinct emoji, 13 "1" when a moderator deletes,
--       14 reason
-- Returns {"stored", payload} with payload `u:<seq>:<epoch>:<change JSON>`
-- (see envelope.rs), or {"not_member"}, {"unseeded"} (no epoch: seed
-- first), {"gone"} (not in this history, or deleted), {"unchanged"},
-- {"too_many"}; nothing is stored unless "stored".
local record = redis.call('HGET', KEYS[4], ARGV[5])
if not record then return {'not_member'} end
record = cjson.decode(record)
local user = record.i
if user == nil or user == '' then user = ARGV[5] end

local epoch = redis.call('GET', KEYS[3])
if not epoch then return {'unseeded'} end
local target = tonumber(ARGV[7])
if epoch ~= ARGV[8] or target > tonumber(redis.call('GET', KEYS[1]) or '0') then
  return {'gone'}
end

local state = cjson.decode(redis.call('GET', KEYS[5]) or ARGV[11])
if state.d then return {'gone'} end

local op, ts = ARGV[6], tonumber(ARGV[9])
local change = {k = op, t = target, m = ARGV[5], n = record.u, u = user, ts = ts}
if op == 'edit' then
  state.t = ARGV[10]
  state.e = ts
  change.x = ARGV[10]
elseif op == 'delete' then
  state = {d = ts}
  if ARGV[13] == '1' then
    state.by = record.u
    change.mod = 1
    change.why = ARGV[14]
  end
  redis.call('DEL', KEYS[6])
else
  local emoji = ARGV[10]
  local mark = emoji .. '\0' .. user
  local reactions = state.r or {}
  local at = nil
  for i = 1, #reactions do
    if reactions[i][1] == emoji then at = i end
  end
  if op == 'react' then
    if redis.call('SISMEMBER', KEYS[6], mark) == 1 then return {'unchanged'} end
    if not at then
      if #reactions >= tonumber(ARGV[12]) then return {'too_many'} end
      reactions[#reactions + 1] = {emoji, 0}
      at = #reactions
    end
    redis.call('SADD', KEYS[6], mark)
    reactions[at][2] = reactions[at][2] + 1
    change.c = reactions[at][2]
  else
    if redis.call('SREM', KEYS[6], mark) == 0 then return {'unchanged'} end
    change.c = 0
    if at then
      reactions[at][2] = reactions[at][2] - 1
      change.c = reactions[at][2]
      if change.c <= 0 then
        change.c = 0
        table.remove(reactions, at)
      end
    end
  end
  change.e = emoji
  state.r = reactions
end

local seq = redis.call('INCR', KEYS[1])
local payload = 'u:' .. seq .. ':' .. epoch .. ':' .. cjson.encode(change)
redis.call('SET', KEYS[5], cjson.encode(state), 'EX', ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-1', 'e', payload)
redis.call(ARGV[4], ARGV[1], payload)
for i = 1, 4 do
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('EXPIRE', KEYS[6], ARGV[3]) end
return {'stored', payload}
