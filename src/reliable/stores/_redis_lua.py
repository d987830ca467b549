"""The Lua scripts of `RedisStore`, one per operation, sharing one prelude (see `reliable.stores._redis_core`)."""

from __future__ import annotations

import hashlib

_PRELUDE = """
local V, I, X, K = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local HP = ARGV[2]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(n) return string.format('%.0f', n) end
local function live(k)
  local r = redis.call('HMGET', k, 'd', 'j', 'v', 'e')
  if not r[3] then return nil end
  if r[4] and tonumber(r[4]) <= now then return nil end
  return r
end
local function purge()
  local dead = redis.call('ZRANGEBYSCORE', X, '-inf', fmt(now), 'LIMIT', 0, 16)
  for _, m in ipairs(dead) do
    redis.call('DEL', HP .. m)
    redis.call('ZREM', I, m)
    redis.call('ZREM', X, m)
  end
end
-- decimal integer strings: exact at any size (Lua numbers are doubles, exact only below 2^53)
local function cmp_abs(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function add_abs(a, b)
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local s = carry + (i > 0 and a:byte(i) - 48 or 0) + (j > 0 and b:byte(j) - 48 or 0)
    out[#out + 1] = s % 10
    carry = (s - s % 10) / 10
    i, j = i - 1, j - 1
  end
  return string.reverse(table.concat(out))
end
local function sub_abs(a, b)
  local out, borrow, i, j = {}, 0, #a, #b
  while i > 0 do
    local d = a:byte(i) - 48 - borrow - (j > 0 and b:byte(j) - 48 or 0)
    if d < 0 then d, borrow = d + 10, 1 else borrow = 0 end
    out[#out + 1] = d
    i, j = i - 1, j - 1
  end
  local s = string.gsub(string.reverse(table.concat(out)), '^0+', '')
  if s == '' then return '0' end
  return s
end
local function add(x, y)
  local xn, yn = x:sub(1, 1) == '-', y:sub(1, 1) == '-'
  local xa, ya = xn and x:sub(2) or x, yn and y:sub(2) or y
  local s, negative
  if xn == yn then
    s, negative = add_abs(xa, ya), xn
  else
    local c = cmp_abs(xa, ya)
    if c == 0 then return '0' end
    if c > 0 then s, negative = sub_abs(xa, ya), xn else s, negative = sub_abs(ya, xa), yn end
  end
  if negative and s ~= '0' then return '-' .. s end
  return s
end
local function write(j, d)
  local m, ttl = ARGV[3], ARGV[4]
  local v = redis.call('INCR', V)
  redis.call('DEL', K)
  redis.call('ZADD', I, 0, m)
  if ttl == '' then
    redis.call('HSET', K, 'd', d, 'j', j, 'v', v)
    redis.call('ZREM', X, m)
    return {v, -1}
  end
  local e = math.ceil(now + tonumber(ttl))
  redis.call('HSET', K, 'd', d, 'j', j, 'v', v, 'e', fmt(e))
  redis.call('PEXPIRE', K, fmt(math.ceil(tonumber(ttl) / 1000) + tonumber(ARGV[5])))
  redis.call('ZADD', X, fmt(e), m)
  return {v, e}
end
"""

_BODIES = {
    "get": """
local r = live(K)
if not r then return false end
return {r[3], r[4] or -1, r[2], r[1]}
""",
    "put_if_absent": """
purge()
local r = live(K)
if r then return {0, r[3], r[4] or -1, r[2], r[1]} end
local w = write(ARGV[6], ARGV[7])
return {1, w[1], w[2]}
""",
    "compare_and_set": """
purge()
local r = live(K)
if not r or tonumber(r[3]) ~= tonumber(ARGV[8]) then return false end
return write(ARGV[6], ARGV[7])
""",
    "set": """
purge()
return write(ARGV[6], ARGV[7])
""",
    "delete": """
purge()
local r = live(K)
if not r or (ARGV[6] ~= '' and tonumber(r[3]) ~= tonumber(ARGV[6])) then return 0 end
redis.call('DEL', K)
redis.call('ZREM', I, ARGV[3])
redis.call('ZREM', X, ARGV[3])
return 1
""",
    "incr": """
purge()
local r = live(K)
if not r then
  write('1', ARGV[6])
  return ARGV[6]
end
if r[2] ~= '1' or not string.match(r[1], '^%-?%d+$') then
  return redis.error_reply('RELIABLE_NOT_A_COUNTER the value is not an int')
end
local total = add(r[1], ARGV[6])
redis.call('HSET', K, 'd', total, 'v', redis.call('INCR', V))
return total
""",
    "scan": """
local limit = tonumber(ARGV[5])
local out, n, offset = {}, 0, 0
while true do
  local batch = redis.call('ZRANGEBYLEX', I, ARGV[3], ARGV[4], 'LIMIT', offset, 256)
  if #batch == 0 then return out end
  offset = offset + #batch
  for _, m in ipairs(batch) do
    local r = live(HP .. m)
    if r then
      out[#out + 1] = m
      out[#out + 1] = r[3]
      out[#out + 1] = r[4] or -1
      out[#out + 1] = r[2]
      out[#out + 1] = r[1]
      n = n + 1
      if n == limit then return out end
    end
  end
end
""",
}

SCRIPTS: dict[str, tuple[str, str]] = {}
"""Script name -> (SHA1, source). EVALSHA first; on NOSCRIPT, EVAL (which also caches it)."""
for _name, _body in _BODIES.items():
    _source = _PRELUDE + _body
    SCRIPTS[_name] = (hashlib.sha1(_source.encode()).hexdigest(), _source)  # Redis names scripts by SHA1

NOT_A_COUNTER = "RELIABLE_NOT_A_COUNTER"
