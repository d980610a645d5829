-- KEYS: the lock. ARGV: holder, ttl ms. Renews the lock only while this holder has it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
