-- ARGV: P, queue, priority, entry id, deliveries, lease µs. Returns the new deadline, or -1
-- when the delivery is no longer held.
local q, p, e, n, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local s = lkey('s', q, p)
local owner = holder(s, e, n)
if not owner then return -1 end
redis.call('XCLAIM', s, G, owner, 0, e, 'JUSTID')  -- resets the idle time, not the count
local deadline = now_us() + lease
redis.call('ZADD', lkey('l', q, p), itoa(deadline), e)
return itoa(deadline)
