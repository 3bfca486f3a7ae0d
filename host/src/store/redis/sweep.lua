-- Delete up to max values whose expiry has passed; returns how many went.
-- ARGV: prefix, now_ms, max.
local p, now, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', now, 'LIMIT', 0, max)
local removed = 0
for _, key in ipairs(due) do
  local rec = redis.call('HMGET', p .. 'kv:' .. key, 'exp', 'len')
  local exp = tonumber(rec[1])
  if exp and exp ~= 0 and exp <= now then
    redis.call('DEL', p .. 'kv:' .. key)
    redis.call('ZREM', p .. 'keys', key)
    local slash = string.find(key, '/', 1, true)
    local tenant = slash and string.sub(key, 1, slash - 1) or key
    redis.call('HINCRBY', p .. 'usage:' .. tenant, 'keys', -1)
    redis.call('HINCRBY', p .. 'usage:' .. tenant, 'bytes', -(#key + tonumber(rec[2])))
    removed = removed + 1
  end
  redis.call('ZREM', p .. 'exp', key)
end
return removed
