"""Store contract checks that race threads (blocking methods) or tasks (async twins) on one store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._contract_base import StoreFactory, _eq, _fresh, _true
from ._fake_clock import FakeClock

T = TypeVar("T")

THREADS = 4


def _cas_increments(store: Any, key: str, count: int) -> int:
    """Add 1 to the int at *key* *count* times by get + compare_and_set; return how many CAS lost a race."""
    conflicts = 0
    for _ in range(count):
        while True:
            record = store.get(key)
            if store.compare_and_set(key, record.value + 1, version=record.version) is not None:
                break
            conflicts += 1
    return conflicts


def _in_threads(target: Callable[[int], T], threads: int = THREADS) -> list[T]:
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    _true(not any(w.is_alive() for w in workers), "threads finished within 60 s")
    if errors:
        raise errors[0]
    return results


def check_thread_race_compare_and_set(make_store: StoreFactory, clock: FakeClock) -> None:
    """Threads doing get + compare_and_set increments on one key lose no update."""
    with _fresh(make_store) as store:
        store.set("counter", 0)
        _in_threads(lambda _: _cas_increments(store, "counter", 100))
        _eq(THREADS * 100, store.get("counter").value, "counter after the CAS race")


def check_thread_race_put_if_absent_and_incr(make_store: StoreFactory, clock: FakeClock) -> None:
    """Racing threads: exactly one put_if_absent creates the key; incr hands out every value once."""
    with _fresh(make_store) as store:
        puts = _in_threads(lambda i: store.put_if_absent("claim", i))
        _eq(1, sum(created for _, created in puts), "creators among racing put_if_absent")
        _eq(1, len({record for record, _ in puts}), "every racer sees the same record")
        tokens = _in_threads(lambda _: [store.incr("fence") for _ in range(50)])
        _eq(list(range(1, THREADS * 50 + 1)), sorted(t for ts in tokens for t in ts), "incr results")


async def acheck_task_race(make_store: StoreFactory, clock: FakeClock) -> None:
    """Tasks on one event loop: one aput_if_absent creates the key; aincr hands out every value once."""
    store = make_store()
    try:
        puts = await asyncio.gather(*(store.aput_if_absent("claim", i) for i in range(20)))
        _eq(1, sum(created for _, created in puts), "creators among racing aput_if_absent")
        tokens = await asyncio.gather(*(store.aincr("fence") for _ in range(50)))
        _eq(list(range(1, 51)), sorted(tokens), "aincr results")
        _eq(50, (await store.aget("fence")).value, "counter after the race")
    finally:
        await store.aclose()
