-- ARGV: P, group key, part, value, ttl ms, parts... Returns every part's value once all are
-- present, else false.
local h = P .. ':join:' .. ARGV[2]
redis.call('HSET', h, ARGV[3], ARGV[4])
redis.call('PEXPIRE', h, ARGV[5], 'NX')  -- counted from the group's first part
local values = redis.call('HMGET', h, unpack(ARGV, 6))
for i = 1, #ARGV - 5 do
  if not values[i] then return false end
end
return values
