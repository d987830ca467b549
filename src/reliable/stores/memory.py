"""`MemoryStore`: a thread-safe store in this process's memory, for tests and single-process use."""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import Any

from .._internal import _clock
from ._codec import check_amount, check_key, check_limit, check_prefix, check_ttl, check_version, decode, encode
from ._protocol import Record, Value

__all__ = ["MemoryStore"]

_COMPACT_SLACK = 1024
"""The expiry heap is rebuilt when it holds this many more entries than twice the live keys (overwritten keys)."""


class MemoryStore:
    """A `reliable.stores.Store` held in a dict, guarded by one lock.

    Values are kept encoded (as the other backends keep them), so a caller that
    mutates what it stored or read never changes the stored record. Time comes from
    the library clock, or from *clock* when given.

    >>> store = MemoryStore()
    >>> record, created = store.put_if_absent("job:1", {"state": "running"}, ttl=60)
    >>> created, store.get("job:1").value
    (True, {'state': 'running'})

    .. versionadded:: 0.1.0
    """

    def __init__(self, *, clock: _clock.Clock | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, tuple[bool, bytes, int, float | None]] = {}
        self._versions = itertools.count(1)
        self._expiries: list[tuple[float, int, str]] = []
        """A heap of ``(expires_at, version, key)`` of the writes with a TTL; overwritten keys' entries are skipped."""
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._data)} keys>)"

    # -- helpers (call with the lock held) ---------------------------------

    def _now(self) -> float:
        return (self._clock or _clock.current()).time()

    def _live(self, key: str, now: float) -> tuple[bool, bytes, int, float | None] | None:
        entry = self._data.get(key)
        if entry is not None and entry[3] is not None and entry[3] <= now:
            del self._data[key]
            return None
        return entry

    def _write(self, key: str, value: Value, ttl: float | None, now: float) -> Record:
        is_json, payload = encode(value)
        version = next(self._versions)
        expires_at = None if ttl is None else now + ttl
        self._put(key, (is_json, payload, version, expires_at), now)
        return Record(key, decode(is_json, payload), version, expires_at)

    def _put(self, key: str, entry: tuple[bool, bytes, int, float | None], now: float) -> None:
        """Store *entry* and purge what has expired: the heap's head is checked on every write, O(log n)."""
        self._data[key] = entry
        expiries = self._expiries
        if entry[3] is not None:
            heapq.heappush(expiries, (entry[3], entry[2], key))
        if expiries and expiries[0][0] <= now:
            self._purge(now)
        elif len(expiries) > 2 * len(self._data) + _COMPACT_SLACK:
            self._expiries = [(e[3], e[2], k) for k, e in self._data.items() if e[3] is not None]
            heapq.heapify(self._expiries)

    def _purge(self, now: float) -> None:
        expiries, data = self._expiries, self._data
        while expiries and expiries[0][0] <= now:
            _, version, key = heapq.heappop(expiries)
            entry = data.get(key)
            if entry is not None and entry[2] == version:  # not overwritten since: this write expired
                del data[key]

    @staticmethod
    def _record(key: str, entry: tuple[bool, bytes, int, float | None]) -> Record:
        return Record(key, decode(entry[0], entry[1]), entry[2], entry[3])

    def _check_open(self) -> None:
        if self._closed:
            from .._errors import StoreUnavailableError

            raise StoreUnavailableError("MemoryStore is closed; create a new one", address="memory://")

    # -- Store ---------------------------------------------------------------

    def now(self) -> float:
        return self._now()

    def get(self, key: str) -> Record | None:
        check_key(key)
        with self._lock:
            if self._closed:
                self._check_open()
            entry = self._data.get(key)  # `_live`, inlined: a replay is one get
            if entry is not None and entry[3] is not None and entry[3] <= self._now():
                del self._data[key]
                return None
        if entry is None:
            return None
        return Record(key, decode(entry[0], entry[1]), entry[2], entry[3])

    def put_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        check_key(key)
        check_ttl(ttl)
        with self._lock:
            self._check_open()
            now = self._now()
            entry = self._live(key, now)
            if entry is not None:
                return self._record(key, entry), False
            return self._write(key, value, ttl, now), True

    def compare_and_set(self, key: str, value: Value, *, version: int, ttl: float | None = None) -> Record | None:
        check_key(key)
        check_ttl(ttl)
        check_version(version)
        with self._lock:
            self._check_open()
            now = self._now()
            entry = self._live(key, now)
            if entry is None or entry[2] != version:
                return None
            return self._write(key, value, ttl, now)

    def set(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        check_key(key)
        check_ttl(ttl)
        with self._lock:
            self._check_open()
            return self._write(key, value, ttl, self._now())

    def delete(self, key: str, *, version: int | None = None) -> bool:
        check_key(key)
        if version is not None:
            check_version(version)
        with self._lock:
            self._check_open()
            entry = self._live(key, self._now())
            if entry is None or (version is not None and entry[2] != version):
                return False
            del self._data[key]
            return True

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        check_key(key)
        check_amount(amount)
        check_ttl(ttl)
        with self._lock:
            self._check_open()
            now = self._now()
            entry = self._live(key, now)
            if entry is None:
                current, expires_at = 0, (None if ttl is None else now + ttl)
            else:
                current, expires_at = _as_int(key, decode(entry[0], entry[1])), entry[3]
            total = current + amount
            self._put(key, (True, str(total).encode(), next(self._versions), expires_at), now)
            return total

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        check_prefix(prefix)
        check_limit(limit)
        with self._lock:
            self._check_open()
            now = self._now()
            keys = sorted(k for k in self._data if k.startswith(prefix))
            out: list[Record] = []
            for k in keys:
                if limit is not None and len(out) >= limit:
                    break
                entry = self._live(k, now)
                if entry is not None:
                    out.append(self._record(k, entry))
                    if limit is not None and len(out) >= limit:
                        break
            return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._data.clear()
            self._expiries.clear()

    # -- AsyncStore: nothing here blocks on I/O, so the async twins call the sync methods.

    async def anow(self) -> float:
        return self.now()

    async def aget(self, key: str) -> Record | None:
        return self.get(key)

    async def aput_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        return self.put_if_absent(key, value, ttl=ttl)

    async def acompare_and_set(
        self, key: str, value: Value, *, version: int, ttl: float | None = None
    ) -> Record | None:
        return self.compare_and_set(key, value, version=version, ttl=ttl)

    async def aset(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        return self.set(key, value, ttl=ttl)

    async def adelete(self, key: str, *, version: int | None = None) -> bool:
        return self.delete(key, version=version)

    async def aincr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self.incr(key, amount, ttl=ttl)

    async def ascan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        return self.scan(prefix, limit=limit)

    async def aclose(self) -> None:
        self.close()


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        from .._errors import StoreError

        msg = f"key {key!r} holds {type(value).__name__}, not a counter; incr() needs an int value"
        raise StoreError(msg, key=key)
    return value
