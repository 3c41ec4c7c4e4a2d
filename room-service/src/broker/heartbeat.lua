-- Extends the presence of the given members; returns the ids it does not
-- know (they left or expired and were removed), so their gateway can join
-- them again.
-- KEYS: 1 presence zset. ARGV: 1 expires-at ms, 2.. member ids.
local unknown = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
  else
    unknown[#unknown + 1] = ARGV[i]
  end
end
return unknown
