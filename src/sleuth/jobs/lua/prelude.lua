-- Shared by every script: ARGV[1] is the key prefix P.
local P = ARGV[1]
local G = 'workers'
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function itoa(x) return string.format('%.0f', x) end  -- exact up to 2^53
local function lkey(kind, q, p) return P .. ':' .. kind .. ':' .. q .. ':' .. p end
local function ensure_level(q, p)
  local s = lkey('s', q, p)
  if redis.call('EXISTS', s) == 0 then
    redis.call('XGROUP', 'CREATE', s, G, '0', 'MKSTREAM')
    redis.call('ZADD', P .. ':lv:' .. q, tonumber(p), p)
    redis.call('SADD', P .. ':queues', q)
  end
  return s
end
local function levels_of(q)
  local out = {}
  for _, p in ipairs(redis.call('ZRANGE', P .. ':lv:' .. q, 0, -1)) do
    out[#out + 1] = {tonumber(p), q, p}
  end
  return out
end
-- The owner of pending entry e when it has had exactly n deliveries, else nil.
local function holder(s, e, n)
  if redis.call('EXISTS', s) == 0 then return nil end
  local r = redis.call('XPENDING', s, G, e, e, 1)[1]
  if r and tonumber(r[4]) == tonumber(n) then return r[2] end
  return nil
end
local function settle(q, p, e)
  local s = lkey('s', q, p)
  redis.call('XACK', s, G, e)
  redis.call('XDEL', s, e)
  redis.call('ZREM', lkey('l', q, p), e)
end
local function release_key(q, id, k)
  local kh = P .. ':k:' .. q
  if k and redis.call('HGET', kh, k) == id then redis.call('HDEL', kh, k) end
end
