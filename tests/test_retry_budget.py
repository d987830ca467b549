"""`reliable.RetryBudget`: retries capped at a share of calls plus a floor, shared through the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reliable
from backends import Backend
from reliable._internal import _telemetry
from reliable.stores import Store
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, installed

START = 1_800_000_000.0
"""Fake wall time, so every process counts in the same budget window."""


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with installed(FakeClock(start=START)) as fake:
        yield fake


@pytest.fixture
def events() -> Iterator[list[_telemetry.Event]]:
    seen: list[_telemetry.Event] = []
    _telemetry.add_listener(seen.append)
    yield seen
    _telemetry.remove_listener(seen.append)


class Down:
    """A dependency that always times out; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        raise TimeoutError("down")


def fast(budget: reliable.RetryBudget, **options: Any) -> dict[str, Any]:
    return {"budget": budget, "attempts": 10, "wait_initial": 0, "wait_max": 0, **options}


def test_floor_caps_retries_then_fails_fast(store: Store, clock: FakeClock, events: list[_telemetry.Event]) -> None:
    """With no calls to earn retries, the floor (min_per_second * window = 3) allows 3 retries in all, then none."""
    budget = reliable.RetryBudget("floor", ratio=0, min_per_second=0.3, window=10, store=store)
    down = Down()
    call = reliable.retry(**fast(budget))(down)

    with pytest.raises(TimeoutError) as first:
        call()
    with pytest.raises(TimeoutError) as second:
        call()

    assert 4 + 1 == down.calls
    assert "the retry budget 'floor' is exhausted" in first.value.__notes__[0]
    assert "after 1 attempt(s)" in second.value.__notes__[0]
    assert 2 == len([e for e in events if e.name == "reliable.retry.budget_exhausted"])


def test_calls_earn_retries_at_the_ratio(store: Store, clock: FakeClock) -> None:
    """10 good calls + 1 failing call at ratio 0.5 allow 5 retries (5.5 tokens)."""
    budget = reliable.RetryBudget("ratio", ratio=0.5, min_per_second=0, window=60, store=store)
    good = reliable.retry(**fast(budget))(lambda: "ok")
    down = Down()
    bad = reliable.retry(**fast(budget))(down)

    results = [good() for _ in range(10)]
    with pytest.raises(TimeoutError):
        bad()

    assert (["ok"] * 10, 6) == (results, down.calls)


def test_a_new_window_refills_the_floor(store: Store, clock: FakeClock) -> None:
    """After the window passes, the floor is available again."""
    budget = reliable.RetryBudget("window", ratio=0, min_per_second=0.1, window=10, store=store)
    down = Down()
    call = reliable.retry(**fast(budget))(down)

    with pytest.raises(TimeoutError):
        call()
    clock.advance(10)
    with pytest.raises(TimeoutError):
        call()

    assert 2 + 2 == down.calls


def test_budget_shared_by_name_across_functions(store: Store, clock: FakeClock) -> None:
    """Two functions with budgets of the same name draw from one allowance."""
    one = reliable.RetryBudget("shared", ratio=0, min_per_second=0.2, window=10, store=store)
    two = reliable.RetryBudget("shared", ratio=0, min_per_second=0.2, window=10, store=store)
    a, b = Down(), Down()

    with pytest.raises(TimeoutError):
        reliable.retry(**fast(one))(a)()
    with pytest.raises(TimeoutError):
        reliable.retry(**fast(two))(b)()

    assert (3, 1) == (a.calls, b.calls)


def test_async_budget(store: Store, clock: FakeClock) -> None:
    """The async driver uses the async store methods and the same accounting."""
    budget = reliable.RetryBudget("async", ratio=0, min_per_second=0.2, window=10, store=store)
    calls: list[int] = []

    @reliable.retry(**fast(budget))
    async def down() -> None:
        calls.append(1)
        raise TimeoutError()

    with pytest.raises(TimeoutError) as info:
        asyncio.run(down())

    assert 3 == len(calls)
    assert "retry budget 'async' is exhausted" in info.value.__notes__[0]


def test_calls_are_deposited_in_batches(store: Store, clock: FakeClock) -> None:
    """Every flush_every calls the in-process count is written to the store's window counter."""
    budget = reliable.RetryBudget("batch", window=10, store=store, flush_every=4)
    call = reliable.retry(budget=budget)(lambda: None)

    for _ in range(9):
        call()

    index = int(START // 10)
    record = store.get(f"reliable:retry-budget:batch:{index}:calls")
    assert record is not None
    assert 8 == int(record.value)


def test_async_calls_are_deposited_in_batches(store: Store, clock: FakeClock) -> None:
    """The async wrapper deposits with the async store methods."""
    budget = reliable.RetryBudget("abatch", window=10, store=store, flush_every=2)

    @reliable.retry(budget=budget)
    async def call() -> None:
        return None

    async def main() -> None:
        for _ in range(5):
            await call()

    asyncio.run(main())

    record = store.get(f"reliable:retry-budget:abatch:{int(START // 10)}:calls")
    assert record is not None
    assert 4 == int(record.value)


def test_block_form_uses_the_budget(store: Store, clock: FakeClock) -> None:
    """reliable.attempts(budget=...) is capped the same way, sync and async."""
    budget = reliable.RetryBudget("block", ratio=0, min_per_second=0.1, window=10, store=store)
    seen: list[int] = []

    with pytest.raises(TimeoutError):
        for attempt in reliable.attempts(**fast(budget)):
            with attempt:
                seen.append(attempt.number)
                raise TimeoutError()

    async def main() -> None:
        async for attempt in reliable.attempts(**fast(budget)):
            with attempt:
                seen.append(attempt.number)
                raise TimeoutError()

    with pytest.raises(TimeoutError):
        asyncio.run(main())

    assert [1, 2, 1] == seen


class BrokenStore(MemoryStore):
    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        raise OSError("store down")


def test_a_failing_store_allows_the_retry(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """The budget fails open: a store error must not turn a retryable failure into an outage."""
    budget = reliable.RetryBudget("broken", ratio=0, min_per_second=0, store=BrokenStore(), flush_every=1)
    down = Down()

    with caplog.at_level(logging.WARNING, logger="reliable.retry"), pytest.raises(TimeoutError):
        reliable.retry(**fast(budget, attempts=3))(down)()

    assert 3 == down.calls
    assert any("store failed; allowing the retry" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"name": ""}, "name"),
        ({"ratio": -0.1}, "ratio"),
        ({"ratio": True}, "ratio"),
        ({"min_per_second": "1"}, "min_per_second"),
        ({"window": 0}, "window"),
        ({"flush_every": 0}, "flush_every"),
        ({"store": 3}, "store"),
    ],
)
def test_invalid_budget_arguments(kwargs: dict[str, Any], parameter: str) -> None:
    """Bad values raise ConfigError naming the parameter."""
    with pytest.raises(reliable.ConfigError) as info:
        reliable.RetryBudget(**kwargs)

    assert parameter == info.value.parameter  # type: ignore[attr-defined]


# -- two processes sharing one store -----------------------------------------------------------------------------


def _worker(url: str, barrier: Any, results: Any) -> None:
    """Child process: open the shared store, then call an always-failing function under a shared budget."""
    logging.getLogger("reliable").setLevel(logging.CRITICAL)
    from reliable.stores import open as open_store

    store = open_store(url)
    down = Down()
    try:
        with installed(FakeClock(start=START)):
            budget = reliable.RetryBudget("fleet", ratio=0, min_per_second=0.4, window=10, store=store)
            call = reliable.retry(**fast(budget))(down)
            barrier.wait(timeout=60)
            for _ in range(3):
                with contextlib.suppress(TimeoutError):
                    call()
    finally:
        results.put(down.calls)
        store.close()


@pytest.mark.processes
def test_budget_is_shared_by_two_processes(shared_backend: Backend, tmp_path: Path) -> None:
    """Two spawned processes hammering a dead dependency share one floor of 4 retries: 6 calls + 4 retries in all."""
    assert shared_backend.url is not None
    url = shared_backend.url(tmp_path)
    reliable.stores.open(url).close()  # create it once, before the race
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    children = [context.Process(target=_worker, args=(url, barrier, results), daemon=True) for _ in range(2)]

    for child in children:
        child.start()
    counts = sorted(results.get(timeout=90) for _ in children)
    for child in children:
        child.join(timeout=30)

    assert [0, 0] == [child.exitcode for child in children]
    assert 2 * 3 + 4 == sum(counts)


class AsyncBrokenStore(MemoryStore):
    async def aincr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        raise OSError("store down")


def test_a_failing_store_allows_the_retry_async(clock: FakeClock) -> None:
    """The async path fails open too, and a failed deposit keeps the calls for later."""
    budget = reliable.RetryBudget("abroken", ratio=0, min_per_second=0, store=AsyncBrokenStore(), flush_every=1)
    calls: list[int] = []

    @reliable.retry(**fast(budget, attempts=3))
    async def down() -> None:
        calls.append(1)
        raise TimeoutError()

    with pytest.raises(TimeoutError):
        asyncio.run(down())

    assert 3 == len(calls)


def test_a_failed_deposit_keeps_the_calls(clock: FakeClock) -> None:
    """When the store cannot take the batch, the calls stay pending for the next deposit."""
    budget = reliable.RetryBudget("keep", store=BrokenStore(), flush_every=2)
    call = reliable.retry(budget=budget)(lambda: None)

    for _ in range(3):
        call()

    assert 3 == budget._pending


class SyncOnlyStore:
    """A store with only the blocking methods: the async driver falls back to them."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("a"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def now(self) -> float:
        return self._inner.now()

    def get(self, key: str) -> Any:
        return self._inner.get(key)

    def put_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> Any:
        return self._inner.put_if_absent(key, value, ttl=ttl)

    def compare_and_set(self, key: str, value: Any, *, version: int, ttl: float | None = None) -> Any:
        return self._inner.compare_and_set(key, value, version=version, ttl=ttl)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> Any:
        return self._inner.set(key, value, ttl=ttl)

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return self._inner.delete(key, version=version)

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self._inner.incr(key, amount, ttl=ttl)

    def scan(self, prefix: str, *, limit: int | None = None) -> Any:
        return self._inner.scan(prefix, limit=limit)

    def close(self) -> None:
        self._inner.close()


def test_async_driver_with_a_blocking_only_store(clock: FakeClock) -> None:
    """A store without async twins still backs the async driver's budget."""
    budget = reliable.RetryBudget("sync-only", ratio=0, min_per_second=0.1, window=10, store=SyncOnlyStore())  # type: ignore[arg-type]
    calls: list[int] = []

    @reliable.retry(**fast(budget))
    async def down() -> None:
        calls.append(1)
        raise TimeoutError()

    with pytest.raises(TimeoutError):
        asyncio.run(down())

    assert 2 == len(calls)


def test_repr_and_idle_flush() -> None:
    """The repr shows the settings; flushing with nothing pending writes nothing."""
    store = MemoryStore()
    budget = reliable.RetryBudget("r", ratio=0.25, min_per_second=2, window="30s", store=store)

    budget._flush()

    assert "RetryBudget('r', ratio=0.25, min_per_second=2.0, window=30.0)" == repr(budget)
    assert [] == store.scan("reliable:")
