-- ARGV: P. Returns {now µs, then per level: {queue, priority, ready, delayed, in flight, dead,
-- oldest ready µs or -1, {consumer, count, ...}, soonest delayed µs or -1}}.
local now = now_us()
local out = {itoa(now)}
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  for _, level in ipairs(levels_of(q)) do
    local p = level[3]
    local s, d = lkey('s', q, p), lkey('d', q, p)
    local summary = redis.call('XPENDING', s, G)
    local in_flight = tonumber(summary[1])
    local due = redis.call('ZCOUNT', d, '-inf', itoa(now))
    local ready = redis.call('XLEN', s) - in_flight + due
    local delayed = redis.call('ZCARD', d) - due
    local oldest = -1
    local g = redis.call('XINFO', 'GROUPS', s)[1]
    for i = 1, #g, 2 do
      if g[i] == 'last-delivered-id' then
        local first = redis.call('XRANGE', s, '(' .. g[i + 1], '+', 'COUNT', 1)[1]
        if first then
          oldest = tonumber(string.match(first[1], '(%d+)-')) * 1000
        end
      end
    end
    local soonest = redis.call('ZRANGEBYSCORE', d, '-inf', itoa(now), 'LIMIT', 0, 1, 'WITHSCORES')
    if soonest[2] and (oldest < 0 or tonumber(soonest[2]) < oldest) then
      oldest = tonumber(soonest[2])
    end
    local later = redis.call('ZRANGEBYSCORE', d, '(' .. itoa(now), '+inf', 'LIMIT', 0, 1,
                             'WITHSCORES')
    local next_due = later[2] and tonumber(later[2]) or -1
    local consumers = {}
    for _, c in ipairs(summary[4] or {}) do
      consumers[#consumers + 1] = c[1]
      consumers[#consumers + 1] = tonumber(c[2])
    end
    out[#out + 1] = {q, p, ready, delayed, in_flight, redis.call('ZCARD', lkey('x', q, p)),
                     itoa(oldest), consumers, itoa(next_due)}
  end
end
return out
