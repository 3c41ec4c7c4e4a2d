-- Claims an attachment for a message, atomically on its one key.
-- KEYS[1]: the attachment's hash (room, user, at, record, posted).
-- ARGV: room, user id, poster ("<member id>\n<client id>").
-- Answers {"ok", record}, {"unknown"}, {"room", its room}, {"user"} or {"posted"}.
local f = redis.call('HMGET', KEYS[1], 'room', 'user', 'posted', 'record')
if not f[1] then return {'unknown'} end
if f[1] ~= ARGV[1] then return {'room', f[1]} end
if f[2] ~= ARGV[2] then return {'user'} end
if f[3] and f[3] ~= ARGV[3] then return {'posted'} end
if not f[3] then redis.call('HSET', KEYS[1], 'posted', ARGV[3]) end
return {'ok', f[4]}
