"""The state-store protocol every primitive is written against.

A store is a small versioned key-value map:

- every live key has a `Record`: its value (``bytes`` or anything JSON can encode),
  a version, and an optional expiry in the store's own time;
- writes are atomic: create-if-absent, compare-and-set on the version, delete if
  the version matches, and an atomic counter;
- versions only grow and are never reused, not even after a key is deleted or
  expires and is created again, so a stale holder's compare-and-set can never
  succeed on someone else's record (no ABA);
- an expired record is invisible at once (reads, writes and scans treat it as
  absent) and purged lazily;
- ``now()`` is the store's clock: the library clock for memory and SQLite, the
  server's time for Redis and PostgreSQL, so leases do not depend on client clocks.

`Store` is the blocking interface and `AsyncStore` its twin (``a``-prefixed
methods). The backends shipped with `reliable` implement both on one object.
`reliable.testing.check_store` is the executable definition of this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["AsyncStore", "Record", "Store", "Value"]

Value = Any
"""A stored value: ``bytes``, or anything `json.dumps` accepts (dicts, lists, str, int, float, bool, None)."""


@dataclass(frozen=True, init=False)
class Record:
    """One live entry of a store.

    Attributes:
        key: The key.
        value: The value, decoded (``bytes`` stay ``bytes``).
        version: Grows on every write of any key; never reused.
        expires_at: Store time (seconds since the epoch) after which the record is gone, or None.
    """

    __slots__ = ("expires_at", "key", "value", "version")

    key: str
    value: Value
    version: int
    expires_at: float | None

    def __init__(self, key: str, value: Value, version: int, expires_at: float | None) -> None:
        # Every store operation makes a Record: the slots are set through their descriptors, which
        # costs a third less than the frozen dataclass's generated object.__setattr__ calls.
        _set_key(self, key)
        _set_value(self, value)
        _set_version(self, version)
        _set_expires_at(self, expires_at)

    def __reduce__(self) -> tuple[type[Record], tuple[str, Value, int, float | None]]:
        return Record, (self.key, self.value, self.version, self.expires_at)  # frozen slots: pickle by constructor


_set_key = Record.__dict__["key"].__set__
_set_value = Record.__dict__["value"].__set__
_set_version = Record.__dict__["version"].__set__
_set_expires_at = Record.__dict__["expires_at"].__set__


@runtime_checkable
class Store(Protocol):
    """The blocking store interface. TTLs are seconds from the store's ``now()``; None means no expiry."""

    def now(self) -> float:
        """The store's time, in seconds since the epoch."""
        ...

    def get(self, key: str) -> Record | None:
        """The live record for *key*, or None."""
        ...

    def put_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        """Create *key* unless a live record exists; return ``(record, created)``.

        ``record`` is the new record when ``created`` is true, else the live one that was
        already there, so a caller learns in one round trip who holds the key.
        """
        ...

    def compare_and_set(self, key: str, value: Value, *, version: int, ttl: float | None = None) -> Record | None:
        """Replace *key*'s value if its live record has *version*; return the new record, or None if not."""
        ...

    def set(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        """Write *key* unconditionally (heartbeats, metadata) and return the new record."""
        ...

    def delete(self, key: str, *, version: int | None = None) -> bool:
        """Delete *key* (only if its live record has *version*, when given); return whether it was deleted."""
        ...

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add *amount* to the integer at *key* (absent or expired counts as 0) and return the new value.

        *ttl* applies only when this call creates the counter (a fixed window); later
        increments keep the first expiry.
        """
        ...

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        """Live records whose key starts with *prefix*, sorted by key."""
        ...

    def close(self) -> None:
        """Release connections and files. The store may not be used afterwards."""
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """The asyncio twin of `Store`: the same operations and semantics, awaited."""

    async def anow(self) -> float: ...

    async def aget(self, key: str) -> Record | None: ...

    async def aput_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]: ...

    async def acompare_and_set(
        self, key: str, value: Value, *, version: int, ttl: float | None = None
    ) -> Record | None: ...

    async def aset(self, key: str, value: Value, *, ttl: float | None = None) -> Record: ...

    async def adelete(self, key: str, *, version: int | None = None) -> bool: ...

    async def aincr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int: ...

    async def ascan(self, prefix: str, *, limit: int | None = None) -> list[Record]: ...

    async def aclose(self) -> None: ...
