-- All operations of one transaction, or none.
-- ARGV: prefix, now_ms, n, then six fields per operation:
--   put   key cond version value expires_at_ms (0: never)
--   del   key cond version '' ''
--   check key cond version '' ''
--   add   key delta '' '' ''
--   send  tenant topic payload due_at_ms trace_id
-- cond is none | absent | exists | version. Returns {0, result...} or
-- {-1, index of the first operation whose condition failed}.
local p, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function field(i, j) return ARGV[3 + (i - 1) * 6 + j] end
local function tenant_of(key)
  local slash = string.find(key, '/', 1, true)
  if slash then return string.sub(key, 1, slash - 1) end
  return key
end

-- Check every condition before writing anything.
local state = {}
for i = 1, n do
  local kind = field(i, 1)
  if kind == 'put' or kind == 'del' or kind == 'check' then
    local rec = redis.call('HMGET', p .. 'kv:' .. field(i, 2), 'ver', 'exp', 'len')
    local last, exp = tonumber(rec[1]), tonumber(rec[2]) or 0
    local live = last ~= nil and (exp == 0 or exp > now)
    local cond = field(i, 3)
    local ok = cond == 'none'
      or (cond == 'absent' and not live)
      or (cond == 'exists' and live)
      or (cond == 'version' and live and last == tonumber(field(i, 4)))
    if not ok then return {-1, i - 1} end
    state[i] = {last = last or 0, exp = exp, len = tonumber(rec[3])}
  end
end

local usage = {}
local function count(key, keys, bytes)
  local t = tenant_of(key)
  local u = usage[t] or {0, 0}
  usage[t] = {u[1] + keys, u[2] + bytes}
end

local out = {0}
for i = 1, n do
  local kind, key = field(i, 1), field(i, 2)
  local s = state[i]
  if kind == 'put' then
    local value, exp = field(i, 5), tonumber(field(i, 6))
    local version = s.last + 1
    redis.call('HSET', p .. 'kv:' .. key, 'v', value, 'ver', version, 'exp', exp, 'len', #value)
    if exp ~= 0 then
      redis.call('ZADD', p .. 'exp', exp, key)
    elseif s.exp ~= 0 then
      redis.call('ZREM', p .. 'exp', key)
    end
    if s.len then
      count(key, 0, #value - s.len)
    else
      count(key, 1, #key + #value)
      redis.call('ZADD', p .. 'keys', 0, key)
    end
    out[#out + 1] = version
  elseif kind == 'del' then
    if s.len then
      redis.call('DEL', p .. 'kv:' .. key)
      redis.call('ZREM', p .. 'keys', key)
      redis.call('ZREM', p .. 'exp', key)
      count(key, -1, -(#key + s.len))
    end
    out[#out + 1] = 0
  elseif kind == 'check' then
    out[#out + 1] = 0
  elseif kind == 'add' then
    local counter = p .. 'n:' .. key
    if redis.call('EXISTS', counter) == 0 then count(key, 1, #key + 8) end
    out[#out + 1] = redis.call('INCRBY', counter, field(i, 3))
  elseif kind == 'send' then
    out[#out + 1] = enqueue(p, key, field(i, 3), field(i, 4), tonumber(field(i, 5)), field(i, 6))
  end
end

for t, u in pairs(usage) do
  if u[1] ~= 0 then redis.call('HINCRBY', p .. 'usage:' .. t, 'keys', u[1]) end
  if u[2] ~= 0 then redis.call('HINCRBY', p .. 'usage:' .. t, 'bytes', u[2]) end
end
return out
