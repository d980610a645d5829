-- ARGV: P, dead job ids... Returns how many moved back.
local moved = 0
for i = 2, #ARGV do
  local old = P .. ':j:' .. ARGV[i]
  local f = redis.call('HMGET', old, 'q', 'pr', 'p', 'k')
  local q, p, k = f[1], f[2], f[4]
  if q and redis.call('ZSCORE', lkey('x', q, p), ARGV[i]) then
    local kh = P .. ':k:' .. q
    if not k or redis.call('HEXISTS', kh, k) == 0 then
      local id = itoa(redis.call('INCR', P .. ':seq'))
      local j = P .. ':j:' .. id
      redis.call('HSET', j, 'q', q, 'pr', p, 'p', f[3], 'a', 0)
      if k then
        redis.call('HSET', j, 'k', k)
        redis.call('HSET', kh, k, id)
      end
      redis.call('XADD', ensure_level(q, p), '*', 'j', id)
      redis.call('ZREM', lkey('x', q, p), ARGV[i])
      redis.call('DEL', old)
      moved = moved + 1
    end
  end
end
return moved
