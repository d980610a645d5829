-- ARGV: P, queue, priority, job id, entry id, deliveries, delay µs, count attempt (1/0), error.
local q, p, id, e, n = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local delay, count, err = tonumber(ARGV[7]), ARGV[8], ARGV[9]
if not holder(lkey('s', q, p), e, n) then return 0 end
settle(q, p, e)
local j = P .. ':j:' .. id
-- The new entry starts at one delivery: fold this entry's deliveries into `a`.
if count == '1' then
  redis.call('HINCRBY', j, 'a', n)
else
  redis.call('HINCRBY', j, 'a', n - 1)
end
redis.call('HSET', j, 'err', err)
if delay > 0 then
  redis.call('ZADD', lkey('d', q, p), itoa(now_us() + delay), id)
else
  redis.call('XADD', lkey('s', q, p), '*', 'j', id)
end
return 1
