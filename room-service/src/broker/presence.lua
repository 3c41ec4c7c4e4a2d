-- Applies a batch of presence changes to one room atomically, publishes one
-- presence event with what they changed, and reads the room back as it
-- stands after them: the snapshot every joiner of the batch is shown. Called
-- with no changes, it only reads (a page of members).
--
-- KEYS: 1 members hash (id -> JSON record), 2 roster zset (score 0,
--       "<name>\0<id>", in name order), 3 presence zset (id -> expiry ms),
--       4 seq, 5 epoch, 6 history stream, 7 rooms set (on a cluster, the
--       one in the room's slot), 8 moderation hash (moderation.rs): a
--       banned user's join is refused (applied flag -1, nothing changed),
--       and the first user to join a room without an owner owns it
-- ARGV: 1 channel, 2 the publish command (PUBLISH; SPUBLISH on a Redis
--       Cluster), 3 epoch to use if the room has none ("": start none, the
--       room-service seeds rooms from its store), 4 room name,
--       5 room ttl seconds, 6 history events to read back, 7 members to
--       read back, 8 roster cursor to start after ("" = from the start),
--       9 now in ms: members whose presence ran out by then leave first
--       ("" = none do), 10 number of changes, then 6 per change:
--       join:  "join", id, record, expires-at ms, "1" to restore silently
--              (else ""), ""
--       leave: "leave", id, reason, only-if-expired-at ms ("" = always),
--              only-if-held-by connection ("" = any), detach-until ms
--              ("" = leave now)
-- A record is JSON: u name, g gateway, t joined at, c the connection that
-- holds the member, d (only while no connection holds it) the reason it
-- will leave for.
-- Publishes `p:<count>` and one line per change: `+id\0record` joined,
-- `-id\0record\0reason` left, `~id\0connection` taken over from that
-- connection, `=id\0record` restored.
-- Returns {applied flags, epoch, last seq, history payloads, member ids,
--          member records, member count, next cursor ("" = no more),
--          the room's owner ("" = none), the joiners who are moderators};
-- or {"unseeded"} when there are changes or expiries to apply, the room has
-- no epoch and ARGV[3] is "": nothing is changed (a read alone answers
-- with an empty epoch).
local epoch = redis.call('GET', KEYS[5])
if not epoch and ARGV[3] == '' and (tonumber(ARGV[10]) > 0 or ARGV[9] ~= '') then
  return {'unseeded'}
end

local function entry(record, id)
  return cjson.decode(record).u .. '\0' .. id
end

local applied, lines, moderators = {}, {}, {}

-- `ran_out`: the member leaves because its presence ran out; if it was
-- detached, for the reason it was detached for.
local function remove(id, old, reason, ran_out)
  local held = cjson.decode(old)
  if ran_out and held.d then reason = held.d end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], held.u .. '\0' .. id)
  redis.call('ZREM', KEYS[3], id)
  lines[#lines + 1] = '-' .. id .. '\0' .. old .. '\0' .. reason
end

local function join(id, data, at, restore)
  local user = cjson.decode(data).i
  if user and user ~= '' then
    if redis.call('HEXISTS', KEYS[8], 'ban:' .. user) == 1 then return -1 end
    if restore ~= '1' then redis.call('HSETNX', KEYS[8], 'owner', user) end
    if redis.call('HEXISTS', KEYS[8], 'role:' .. user) == 1 then moderators[#moderators + 1] = user end
  end
  local old = redis.call('HGET', KEYS[1], id)
  if old then redis.call('ZREM', KEYS[2], entry(old, id)) end
  redis.call('HSET', KEYS[1], id, data)
  redis.call('ZADD', KEYS[2], 0, entry(data, id))
  redis.call('ZADD', KEYS[3], at, id)
  if not old then
    lines[#lines + 1] = (restore == '1' and '=' or '+') .. id .. '\0' .. data
    return 1
  end
  local before, now = cjson.decode(old), cjson.decode(data)
  if before.c and before.c ~= now.c and not before.d then
    lines[#lines + 1] = '~' .. id .. '\0' .. before.c
  end
  -- Joining again under the same name (a heartbeat finding a member
  -- forgotten, a session resuming) changes nothing anyone sees.
  if before.u ~= now.u then
    lines[#lines + 1] = '+' .. id .. '\0' .. data
    return 1
  end
  return 0
end

local function leave(id, reason, at, connection, detach)
  local old = redis.call('HGET', KEYS[1], id)
  if not old then return 0 end
  local holder = cjson.decode(old).c
  if connection ~= '' and holder and holder ~= connection then return 0 end
  if at ~= '' then
    local expires = redis.call('ZSCORE', KEYS[3], id)
    if expires and tonumber(expires) > tonumber(at) then return 0 end
  end
  if detach ~= '' then
    local held = cjson.decode(old)
    held.d = reason
    redis.call('HSET', KEYS[1], id, cjson.encode(held))
    redis.call('ZADD', KEYS[3], detach, id)
    return 0
  end
  remove(id, old, reason, at ~= '')
  return 1
end

if ARGV[9] ~= '' then
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[9], 'LIMIT', 0, 100)
  for _, id in ipairs(gone) do
    local old = redis.call('HGET', KEYS[1], id)
    if old then remove(id, old, 'expired', true) else redis.call('ZREM', KEYS[3], id) end
  end
end

for i = 0, tonumber(ARGV[10]) - 1 do
  local base = 11 + i * 6
  local op, id, a, b, c, d = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  if op == 'join' then
    applied[#applied + 1] = join(id, a, b, c)
  else
    applied[#applied + 1] = leave(id, a, b, c, d)
  end
end

local count = redis.call('HLEN', KEYS[1])
if not epoch then
  epoch = ARGV[3]
  if epoch ~= '' then redis.call('SET', KEYS[5], epoch) end
end
if #lines > 0 then
  redis.call('SADD', KEYS[7], ARGV[4])
  redis.call(ARGV[2], ARGV[1], 'p:' .. count .. '\n' .. table.concat(lines, '\n'))
  for i = 1, 6 do
    redis.call('EXPIRE', KEYS[i], ARGV[5])
  end
  if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('EXPIRE', KEYS[8], ARGV[5]) end
end

local history = {}
if tonumber(ARGV[6]) > 0 then
  local entries = redis.call('XREVRANGE', KEYS[6], '+', '-', 'COUNT', ARGV[6])
  for i = #entries, 1, -1 do
    history[#history + 1] = entries[i][2][2]
  end
end

local ids, records, next = {}, {}, ''
local want = tonumber(ARGV[7])
if want > 0 then
  local from = '-'
  if ARGV[8] ~= '' then from = '(' .. ARGV[8] end
  local entries = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, want + 1)
  for i = 1, math.min(#entries, want) do
    local at = string.find(entries[i], '\0', 1, true)
    ids[#ids + 1] = string.sub(entries[i], at + 1)
  end
  if #entries > want then next = entries[want] end
  if #ids > 0 then records = redis.call('HMGET', KEYS[1], unpack(ids)) end
end
return {applied, epoch, redis.call('GET', KEYS[4]) or '0', history, ids, records, count, next,
        redis.call('HGET', KEYS[8], 'owner') or '', moderators}
