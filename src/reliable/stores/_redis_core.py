"""The pure half of `RedisStore`: its Lua scripts, the requests it sends and how it reads the replies.

Layout under a prefix ``P`` (default ``reliable:``)::

    P version   string  store-wide counter; every write takes the next value (versions never reused)
    P index     zset    every key, score 0, so ZRANGEBYLEX answers prefix scans in key order
    P expiry    zset    keys with a TTL, scored by expiry (µs, store time), for purging
    P k:<key>   hash    d = payload, j = "1" if JSON, v = version, e = expiry (µs, store time)

Every operation is one script run (EVALSHA, one round trip). A script reads the server's
``TIME`` (or takes a test clock's time, see `reliable.stores._server.test_time`), treats records
past ``e`` as absent, and deletes up to 16 expired records on each write, so nothing needs a
daemon. Redis's own PEXPIRE on each hash is only the backstop.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from .._errors import StoreError
from .._internal import _clock
from ._codec import check_amount, check_key, check_limit, check_prefix, check_ttl, decode, encode
from ._protocol import Record, Value
from ._server import decode_key, encode_key, prefix_end

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

Arg = bytes | str


class Call(NamedTuple):
    """One request: the script to run (None: the TIME command), its keys and arguments, and the reply parser."""

    operation: str
    key: str | None
    script: str | None
    keys: list[bytes]
    args: list[Arg]
    parse: Callable[[Any], Any]


class Layout:
    """The Redis key names of one store (one prefix) and the request builders for each operation."""

    def __init__(self, prefix: str) -> None:
        raw = encode_key(prefix)
        self.prefix = prefix
        self.version_key = raw + b"version"
        self.index_key = raw + b"index"
        self.expiry_key = raw + b"expiry"
        self.record_prefix = raw + b"k:"

    def _keys(self, member: bytes | None) -> list[bytes]:
        keys = [self.version_key, self.index_key, self.expiry_key]
        if member is not None:
            keys.append(self.record_prefix + member)
        return keys

    def _head(self, now: float | None, member: bytes, ttl: float | None) -> list[Arg]:
        return [
            _micros(now),
            self.record_prefix,
            member,
            "" if ttl is None else repr(ttl * 1e6),
            _grace(now),
        ]

    def now(self, now: float | None) -> Call:
        def parse(reply: Any) -> float:
            return now if now is not None else int(reply[0]) + int(reply[1]) / 1e6

        return Call("now", None, None, [], [], parse)

    def get(self, key: str, now: float | None) -> Call:
        member = encode_key(check_key(key))
        return Call("get", key, "get", self._keys(member), [_micros(now), self.record_prefix, member], _optional(key))

    def put_if_absent(self, key: str, value: Value, ttl: float | None, now: float | None) -> Call:
        member = encode_key(check_key(key))
        is_json, payload = encode(value)
        args = [*self._head(now, member, check_ttl(ttl)), _flag(is_json), payload]

        def parse(reply: Any) -> tuple[Record, bool]:
            if int(reply[0]):
                return _record(key, [reply[1], reply[2], _flag(is_json), payload]), True
            return _record(key, reply[1:]), False

        return Call("put_if_absent", key, "put_if_absent", self._keys(member), args, parse)

    def compare_and_set(self, key: str, value: Value, version: int, ttl: float | None, now: float | None) -> Call:
        member = encode_key(check_key(key))
        is_json, payload = encode(value)
        args = [*self._head(now, member, check_ttl(ttl)), _flag(is_json), payload, str(_version(version))]
        parse = _written(key, is_json, payload)
        return Call("compare_and_set", key, "compare_and_set", self._keys(member), args, parse)

    def set(self, key: str, value: Value, ttl: float | None, now: float | None) -> Call:
        member = encode_key(check_key(key))
        is_json, payload = encode(value)
        args = [*self._head(now, member, check_ttl(ttl)), _flag(is_json), payload]
        return Call("set", key, "set", self._keys(member), args, _written(key, is_json, payload))

    def delete(self, key: str, version: int | None, now: float | None) -> Call:
        member = encode_key(check_key(key))
        args = [*self._head(now, member, None), "" if version is None else str(_version(version))]
        return Call("delete", key, "delete", self._keys(member), args, lambda reply: bool(int(reply)))

    def incr(self, key: str, amount: int, ttl: float | None, now: float | None) -> Call:
        member = encode_key(check_key(key))
        args = [*self._head(now, member, check_ttl(ttl)), str(check_amount(amount))]
        return Call("incr", key, "incr", self._keys(member), args, int)

    def scan(self, prefix: str, limit: int | None, now: float | None) -> Call | None:
        """The scan request, or None when *limit* asks for nothing."""
        if check_limit(limit) == 0:
            return None
        low = encode_key(check_prefix(prefix))
        high = prefix_end(low)
        lo: Arg = b"[" + low if low else "-"
        hi: Arg = "+" if high is None else b"(" + high
        args: list[Arg] = [_micros(now), self.record_prefix, lo, hi, str(-1 if limit is None else limit)]

        def parse(reply: Any) -> list[Record]:
            return [_record(decode_key(reply[i]), reply[i + 1 : i + 5]) for i in range(0, len(reply), 5)]

        return Call("scan", None, "scan", self._keys(None), args, parse)


def _micros(now: float | None) -> str:
    return "" if now is None else str(round(now * 1e6))


def _grace(now: float | None) -> str:
    """Milliseconds Redis keeps a hash past its TTL: the store's own expiry always comes first.

    Under a test clock real time and store time drift apart, so the backstop waits a day
    more than the clock's skew; the purge on writes still removes the record in store time.
    """
    if now is None:
        return "1000"
    return str(86_400_000 + math.ceil(abs(now - _clock.SYSTEM.time()) * 1000))


def _flag(is_json: bool) -> bytes:
    return b"1" if is_json else b"0"


def _version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        from .._errors import ConfigError

        msg = f"version={version!r} is invalid; pass the int version of a record you read"
        raise ConfigError(msg, version=version)
    return version


def _record(key: str, fields: Any) -> Record:
    version, expires, flag, payload = fields
    expires_us = int(expires)
    return Record(key, decode(flag == b"1", payload), int(version), None if expires_us < 0 else expires_us / 1e6)


def _optional(key: str) -> Callable[[Any], Record | None]:
    return lambda reply: None if reply is None else _record(key, reply)


def _written(key: str, is_json: bool, payload: bytes) -> Callable[[Any], Record | None]:
    flag = _flag(is_json)
    return lambda reply: None if reply is None else _record(key, [reply[0], reply[1], flag, payload])


def not_a_counter(key: str | None, server_message: str) -> StoreError:
    msg = f"key {key!r} holds a value that is not an int counter ({server_message}); incr() needs an int value"
    return StoreError(msg, key=key)
