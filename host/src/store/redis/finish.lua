-- End a lease: ack (forget), retry (due again at ARGV[5]) or dead (keep among
-- the tenant's dead letters with reason ARGV[5]). Only the current lease may
-- end it: a host whose lease ran out and was taken over changes nothing.
-- ARGV: prefix, id, lease_until_ms, action, due_at_ms or reason.
-- Returns 1 if the message was ended, 0 if the lease was not current.
local p, id, lease_until, action, arg = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local score = redis.call('ZSCORE', p .. 'q:due', id)
if not score or tonumber(score) ~= tonumber(lease_until) then return 0 end
if action == 'retry' then
  redis.call('ZADD', p .. 'q:due', arg, id)
  return 1
end
local m = p .. 'q:m:' .. id
local rec = redis.call('HMGET', m, 'tenant', 'topic', 'payload', 'attempt')
redis.call('ZREM', p .. 'q:due', id)
redis.call('DEL', m)
if redis.call('HINCRBY', p .. 'q:pending', rec[1], -1) <= 0 then
  redis.call('HDEL', p .. 'q:pending', rec[1])
end
if action == 'dead' then
  redis.call('HSET', p .. 'q:d:' .. id, 'tenant', rec[1], 'topic', rec[2],
    'payload', rec[3], 'attempt', rec[4], 'reason', arg)
  redis.call('ZADD', p .. 'q:dead:' .. rec[1], id, id)
  redis.call('INCR', p .. 'q:dead')
end
return 1
