-- Deletes an attachment if nobody posted it, atomically against a claim.
-- KEYS[1]: the attachment's hash. Answers its record, or false when it is
-- posted or gone.
local f = redis.call('HMGET', KEYS[1], 'record', 'posted')
if not f[1] or f[2] then return false end
redis.call('DEL', KEYS[1])
return f[1]
