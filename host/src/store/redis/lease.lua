-- Lease up to max due messages: each is hidden until lease_until by
-- re-scoring it, and its attempt count goes up. A host that dies holding a
-- lease loses nothing: at lease_until the message is due again, for any host.
-- ARGV: prefix, now_ms, lease_until_ms, max.
-- Returns {id, tenant, topic, payload, trace_id, attempt} per message.
local p, now, lease_until, max = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', p .. 'q:due', '-inf', now, 'LIMIT', 0, max)
local out = {}
for _, id in ipairs(ids) do
  local m = p .. 'q:m:' .. id
  local rec = redis.call('HMGET', m, 'tenant', 'topic', 'payload', 'trace')
  if rec[1] then
    local attempt = redis.call('HINCRBY', m, 'attempt', 1)
    redis.call('ZADD', p .. 'q:due', lease_until, id)
    out[#out + 1] = {id, rec[1], rec[2], rec[3], rec[4], attempt}
  else
    redis.call('ZREM', p .. 'q:due', id)
  end
end
return out
