-- ARGV: P, JSON array of [queue, priority, job id, entry id, deliveries, dedup key or '', ...].
local jobs = cjson.decode(ARGV[2])
local done = {}  -- level -> {queue, priority, entry ids, job keys}
for i = 1, #jobs, 6 do
  local q, p, id, e, n, k = jobs[i], jobs[i + 1], jobs[i + 2], jobs[i + 3], jobs[i + 4], jobs[i + 5]
  if holder(lkey('s', q, p), e, n) then
    local level = lkey('s', q, p)
    local d = done[level]
    if not d then
      d = {q, p, {}, {}}
      done[level] = d
    end
    d[3][#d[3] + 1] = e
    d[4][#d[4] + 1] = P .. ':j:' .. id
    if k ~= '' then release_key(q, id, k) end
  end
end
for s, d in pairs(done) do
  for start = 1, #d[3], 1000 do
    local stop = math.min(start + 999, #d[3])
    redis.call('XACK', s, G, unpack(d[3], start, stop))
    redis.call('XDEL', s, unpack(d[3], start, stop))
    redis.call('ZREM', lkey('l', d[1], d[2]), unpack(d[3], start, stop))
    redis.call('DEL', unpack(d[4], start, stop))
  end
end
return 0
