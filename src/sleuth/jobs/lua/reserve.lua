-- ARGV: P, n, lease µs, consumer, queues... Returns {deadline µs, JSON text of a list of
-- [queue, priority, job id, entry id, deliveries, attempts before the entry, payload, dedup key
-- or null]}: one string with the payloads spliced in as they are, which the client parses in
-- one call instead of 8 reply elements and a payload parse per job.
local want, lease, consumer = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = now_us()
local deadline = now + lease
local out = {}

local score = itoa(deadline)
local leased = {}  -- lease zset key -> {score, entry id, ...}, added at the end in bulk

local function take(q, p, e, id, n)
  local f = redis.call('HMGET', P .. ':j:' .. id, 'a', 'p', 'k')
  if not f[2] then  -- an entry whose job body is gone: drop it rather than fail every reserve
    settle(q, p, e)
    return
  end
  local l = lkey('l', q, p)
  local pairs_ = leased[l]
  if not pairs_ then
    pairs_ = {}
    leased[l] = pairs_
  end
  pairs_[#pairs_ + 1] = score
  pairs_[#pairs_ + 1] = e
  local k = f[3] and cjson.encode(f[3]) or 'null'
  local payload = f[2]
  local ok, decoded = pcall(cjson.decode, payload)
  if not ok or type(decoded) ~= 'table' then
    -- Not JSON (written by hand, or damaged): delivered wrapped, so that the worker
    -- dead-letters it with its reason instead of this reply failing every reserve.
    payload = cjson.encode({unreadable_payload = payload})
  end
  out[#out + 1] = '[' .. cjson.encode(q) .. ',' .. p .. ',"' .. id .. '","' .. e .. '",'
    .. tostring(n) .. ',' .. f[1] .. ',' .. payload .. ',' .. k .. ']'
  want = want - 1
end

-- Due delayed jobs join the end of their stream.
local function promote(q, p)
  local d = lkey('d', q, p)
  local due = redis.call('ZRANGEBYSCORE', d, '-inf', itoa(now), 'LIMIT', 0, 1000)
  if #due > 0 then
    local s = lkey('s', q, p)
    for _, id in ipairs(due) do redis.call('XADD', s, '*', 'j', id) end
    redis.call('ZREM', d, unpack(due))
  end
end

-- Deliveries whose lease ran out go to this consumer, one more delivery each.
local function reclaim(q, p)
  local l, s = lkey('l', q, p), lkey('s', q, p)
  for _, e in ipairs(redis.call('ZRANGEBYSCORE', l, '-inf', itoa(now), 'LIMIT', 0, want)) do
    local got = redis.call('XCLAIM', s, G, consumer, 0, e)
    if got[1] then
      local n = redis.call('XPENDING', s, G, e, e, 1)[1][4]
      take(q, p, e, got[1][2][2], n)
    else
      redis.call('ZREM', l, e)  -- no longer pending: nothing to take back
    end
  end
end

local function read(q, p, count)
  local r = redis.call('XREADGROUP', 'GROUP', G, consumer, 'COUNT', count,
                       'STREAMS', lkey('s', q, p), '>')
  if r then
    for _, entry in ipairs(r[1][2]) do take(q, p, entry[1], entry[2][2], 1) end
  end
end

local function after(a, b)  -- stream ids "ms-seq": is a later than b?
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am > bm end
  return tonumber(as) > tonumber(bs)
end

local function last_delivered(s)
  local g = redis.call('XINFO', 'GROUPS', s)[1]
  for i = 1, #g, 2 do
    if g[i] == 'last-delivered-id' then return g[i + 1] end
  end
end

local levels = {}
for i = 5, #ARGV do
  for _, level in ipairs(levels_of(ARGV[i])) do levels[#levels + 1] = level end
end
table.sort(levels, function(x, y) return x[1] > y[1] end)

local i = 1
while i <= #levels and want > 0 do
  local j = i
  while j < #levels and levels[j + 1][1] == levels[i][1] do j = j + 1 end
  for k = i, j do promote(levels[k][2], levels[k][3]) end
  for k = i, j do
    if want > 0 then reclaim(levels[k][2], levels[k][3]) end
  end
  if want > 0 and i == j then
    read(levels[i][2], levels[i][3], want)
  elseif want > 0 then
    -- Several queues at this priority: peek at the next entries of each and read the
    -- oldest `want` of them all, so that no queue is served out of age order.
    local next_ids = {}
    for k = i, j do
      local s = lkey('s', levels[k][2], levels[k][3])
      local ids = redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', want)
      for _, entry in ipairs(ids) do next_ids[#next_ids + 1] = {entry[1], k} end
    end
    table.sort(next_ids, function(x, y) return after(y[1], x[1]) end)
    local counts = {}
    for m = 1, math.min(want, #next_ids) do
      local k = next_ids[m][2]
      counts[k] = (counts[k] or 0) + 1
    end
    for k = i, j do
      if counts[k] then read(levels[k][2], levels[k][3], counts[k]) end
    end
  end
  i = j + 1
end
for l, args in pairs(leased) do
  for start = 1, #args, 1000 do
    redis.call('ZADD', l, unpack(args, start, math.min(start + 999, #args)))
  end
end
return {score, '[' .. table.concat(out, ',') .. ']'}
