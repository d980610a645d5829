-- Claim the next start at a host: KEYS[1] the host's key, ARGV[1] the delay in µs. Returns
-- the µs to wait before starting. The key keeps the next allowed start (µs on the server's
-- clock) and expires once it has passed, so hosts that cooled down take no memory.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local delay = tonumber(ARGV[1])
if delay > 0 then
  local next_at = start + delay
  redis.call('SET', KEYS[1], string.format('%.0f', next_at),
             'PX', math.floor((next_at - now) / 1000) + 1000)
end
return start - now
