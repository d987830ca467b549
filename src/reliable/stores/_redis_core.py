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

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from .._errors import StoreError
from .._internal import _clock
from ._codec import check_amount, check_key, check_limit, check_prefix, check_ttl, check_version, decode, encode
from ._protocol import Record, Value
from ._server import decode_key, encode_key, prefix_end

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
        args = [*self._head(now, member, check_ttl(ttl)), _flag(is_json), payload, str(check_version(version))]
        parse = _written(key, is_json, payload)
        return Call("compare_and_set", key, "compare_and_set", self._keys(member), args, parse)

    def set(self, key: str, value: Value, ttl: float | None, now: float | None) -> Call:
        member = encode_key(check_key(key))
        is_json, payload = encode(value)
        args = [*self._head(now, member, check_ttl(ttl)), _flag(is_json), payload]
        return Call("set", key, "set", self._keys(member), args, _written(key, is_json, payload))

    def delete(self, key: str, version: int | None, now: float | None) -> Call:
        member = encode_key(check_key(key))
        args = [*self._head(now, member, None), "" if version is None else str(check_version(version))]
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
