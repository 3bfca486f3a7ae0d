-- Shared by the scripts that enqueue (prepended to them): one message is a
-- hash `q:m:<id>`, a member of the `q:due` sorted set scored by when it is
-- due (or, while leased, when its lease ends), and one in its tenant's
-- `q:pending` count.
local function enqueue(p, tenant, topic, payload, due, trace)
  local id = redis.call('INCR', p .. 'q:seq')
  redis.call('HSET', p .. 'q:m:' .. id, 'tenant', tenant, 'topic', topic,
    'payload', payload, 'trace', trace, 'attempt', 0)
  redis.call('ZADD', p .. 'q:due', due, id)
  redis.call('HINCRBY', p .. 'q:pending', tenant, 1)
  return id
end
