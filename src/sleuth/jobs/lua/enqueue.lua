-- ARGV: P, queue, priority, delay µs, JSON array of [payload text, dedup key or '', ...]
-- (one argument, not thousands: that is what costs most in a client). Returns {how many were
-- added, the id of the last one added or ''}: jobs whose dedup key is held are skipped.
local q, p, delay = ARGV[2], ARGV[3], tonumber(ARGV[4])
local jobs = cjson.decode(ARGV[5])
local s = ensure_level(q, p)
local kh = P .. ':k:' .. q
local due = itoa(now_us() + delay)
local added, last = 0, ''
for i = 1, #jobs, 2 do
  local payload, k = jobs[i], jobs[i + 1]
  if k == '' or redis.call('HEXISTS', kh, k) == 0 then
    local id = itoa(redis.call('INCR', P .. ':seq'))
    local j = P .. ':j:' .. id
    if k == '' then
      redis.call('HSET', j, 'q', q, 'pr', p, 'p', payload, 'a', '0')
    else
      redis.call('HSET', j, 'q', q, 'pr', p, 'p', payload, 'a', '0', 'k', k)
      redis.call('HSET', kh, k, id)
    end
    if delay > 0 then
      redis.call('ZADD', lkey('d', q, p), due, id)
    else
      redis.call('XADD', s, '*', 'j', id)
    end
    added, last = added + 1, id
  end
end
return {added, last}
