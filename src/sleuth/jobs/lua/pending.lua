-- ARGV: P, queues... Returns the number of unfinished jobs.
local total = 0
for i = 2, #ARGV do
  for _, level in ipairs(levels_of(ARGV[i])) do
    total = total + redis.call('XLEN', lkey('s', ARGV[i], level[3]))
      + redis.call('ZCARD', lkey('d', ARGV[i], level[3]))
  end
end
return total
