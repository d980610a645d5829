-- KEYS: the lock. ARGV: holder. Deletes the lock only while this holder has it.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
