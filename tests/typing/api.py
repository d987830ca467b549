"""Type-checked from a user's point of view by `nox -s typecheck`; never run.

Each decorator must keep the wrapped signature, and each context manager must give the
type its docs promise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from typing_extensions import assert_type

import reliable
from reliable.stores import Record, Store
from reliable.stores.memory import MemoryStore
from reliable.stores.sqlite import SQLiteStore
from reliable.testing import FakeClock


@reliable.retry(attempts=3, deadline="1m")
def fetch(url: str, *, timeout: float = 1.0) -> bytes:
    return url.encode()


@reliable.retry()
async def afetch(url: str) -> int:
    return len(url)


@reliable.retry()
def stream(n: int) -> Iterator[int]:
    yield from range(n)


@reliable.retry()
async def astream(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


assert_type(fetch("x"), bytes)
assert_type(fetch("x", timeout=2.0), bytes)
assert_type(list(stream(3)), list[int])


async def use_async() -> None:
    assert_type(await afetch("x"), int)
    async for item in astream(2):
        assert_type(item, int)


@reliable.idempotent(key=lambda order_id: f"order:{order_id}", ttl="7d")
def write_order(order_id: int) -> dict[str, int]:
    return {"id": order_id}


assert_type(write_order(1), dict[str, int])


@reliable.single_instance("nightly", on_conflict="raise")
def nightly() -> int:
    return 1


@reliable.observed("sync-orders", expect=lambda n: n > 0, max_age="30m")
def sync_orders() -> int:
    return 1


@reliable.observed
def bare() -> str:
    return ""


assert_type(nightly(), int)
assert_type(sync_orders(), int)
assert_type(bare(), str)


def store_types(store: Store) -> None:
    record, created = store.put_if_absent("k", {"a": 1}, ttl=10)
    assert_type(record, Record)
    assert_type(created, bool)
    assert_type(store.compare_and_set("k", 1, version=record.version), Record | None)
    assert_type(store.incr("n"), int)


store_types(MemoryStore())
store_types(SQLiteStore("/tmp/x.db"))

with reliable.single_instance("job", on_conflict="wait", timeout=5) as lease:
    assert_type(lease.token, int)

for attempt in reliable.attempts(attempts=3):
    with attempt:
        pass

clock = FakeClock()
clock.advance("5m")
assert_type(clock.time(), float)
assert_type(reliable.classify(ValueError()).kind, str)
