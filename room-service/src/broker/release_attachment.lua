-- Undoes a claim, only the same poster's.
-- KEYS[1]: the attachment's hash. ARGV[1]: the poster.
-- Answers the upload time (to list it as unposted again), or false.
if redis.call('HGET', KEYS[1], 'posted') ~= ARGV[1] then return false end
redis.call('HDEL', KEYS[1], 'posted')
return redis.call('HGET', KEYS[1], 'at')
