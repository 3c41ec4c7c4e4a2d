-- Applies a batch of presence changes to one room atomically, publishes one
-- presence event with what they changed, and reads the room back as it
-- stands after them: the snapshot every joiner of the batch is shown. Called
-- with no changes, it only reads (a page of members).
--
-- KEYS: 1 members hash (id -> JSON record), 2 roster zset (score 0,
--       "<name>\0<id>", in name order), 3 presence zset (id -> expiry ms),
--       4 seq, 5 epoch, 6 history stream, 7 rooms set (on a cluster, the
--       one in the room's slot)
-- ARGV: 1 channel, 2 the publish command (PUBLISH; SPUBLISH on a Redis
--       Cluster), 3 epoch to use if the room has none, 4 room name,
--       5 room ttl seconds, 6 history events to read back, 7 members to
--       read back, 8 roster cursor to start after ("" = from the start),
--       9 number of changes, then 4 per change:
--       join:  "join", id, record, expires-at ms
--       leave: "leave", id, reason, only-if-expired-at ms ("" = always)
-- Returns {applied flags, epoch, last seq, history payloads, member ids,
--          member records, member count, next cursor ("" = no more)}.
local function entry(record, id)
  return cjson.decode(record).u .. '\0' .. id
end

local applied, lines = {}, {}
for i = 0, tonumber(ARGV[9]) - 1 do
  local op, id, data, at = ARGV[10 + i * 4], ARGV[11 + i * 4], ARGV[12 + i * 4], ARGV[13 + i * 4]
  local old = redis.call('HGET', KEYS[1], id)
  local changed = 0
  if op == 'join' then
    if old then redis.call('ZREM', KEYS[2], entry(old, id)) end
    redis.call('HSET', KEYS[1], id, data)
    redis.call('ZADD', KEYS[2], 0, entry(data, id))
    redis.call('ZADD', KEYS[3], at, id)
    -- Joining again under the same name (a heartbeat finding a member
    -- forgotten) changes nothing anyone sees.
    if not old or entry(old, id) ~= entry(data, id) then
      lines[#lines + 1] = '+' .. id .. '\0' .. data
      changed = 1
    end
  elseif old then
    local expires = redis.call('ZSCORE', KEYS[3], id)
    if at == '' or not expires or tonumber(expires) <= tonumber(at) then
      redis.call('HDEL', KEYS[1], id)
      redis.call('ZREM', KEYS[2], entry(old, id))
      redis.call('ZREM', KEYS[3], id)
      lines[#lines + 1] = '-' .. id .. '\0' .. old .. '\0' .. data
      changed = 1
    end
  end
  applied[#applied + 1] = changed
end

local count = redis.call('HLEN', KEYS[1])
local epoch = redis.call('GET', KEYS[5])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[5], epoch)
end
if #lines > 0 then
  redis.call('SADD', KEYS[7], ARGV[4])
  redis.call(ARGV[2], ARGV[1], 'p:' .. count .. '\n' .. table.concat(lines, '\n'))
  for i = 1, 6 do
    redis.call('EXPIRE', KEYS[i], ARGV[5])
  end
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
return {applied, epoch, redis.call('GET', KEYS[4]) or '0', history, ids, records, count, next}
