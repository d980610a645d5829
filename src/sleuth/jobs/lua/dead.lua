-- ARGV: P, queue, priority, job id, entry id, deliveries, reason.
local q, p, id, e, n, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
if not holder(lkey('s', q, p), e, n) then return 0 end
settle(q, p, e)
local j = P .. ':j:' .. id
local now = now_us()
local attempts = tonumber(redis.call('HGET', j, 'a')) + n
redis.call('HSET', j, 'why', reason, 'ft', itoa(now), 'n', attempts)
release_key(q, id, redis.call('HGET', j, 'k'))
redis.call('ZADD', lkey('x', q, p), itoa(now), id)
return 1
