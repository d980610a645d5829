-- ARGV: P, limit, queue or ''. Returns per dead job, newest first: id, queue, payload,
-- attempts, reason, failed-at µs.
local limit, queue = tonumber(ARGV[2]), ARGV[3]
local queues = queue ~= '' and {queue} or redis.call('SMEMBERS', P .. ':queues')
local found = {}
for _, q in ipairs(queues) do
  for _, level in ipairs(levels_of(q)) do
    local r = redis.call('ZREVRANGE', lkey('x', q, level[3]), 0, limit - 1, 'WITHSCORES')
    for i = 1, #r, 2 do found[#found + 1] = {r[i], tonumber(r[i + 1])} end
  end
end
table.sort(found, function(x, y)
  if x[2] ~= y[2] then return x[2] > y[2] end
  return tonumber(x[1]) > tonumber(y[1])
end)
local out = {}
for m = 1, math.min(limit, #found) do
  local id = found[m][1]
  local f = redis.call('HMGET', P .. ':j:' .. id, 'q', 'p', 'n', 'why', 'ft')
  if f[1] then
    for _, v in ipairs({id, f[1], f[2], f[3], f[4], f[5]}) do out[#out + 1] = v end
  end
end
return out
