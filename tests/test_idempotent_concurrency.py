"""`reliable.idempotent` under concurrency: threads and tasks of one process, other holders, leases and takeovers."""

# ruff: noqa: F811  (pytest fixtures imported from test_idempotent_support are redefined as parameters)

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import reliable
from reliable import _idempotency_core as core
from reliable._serialize import JSONSerializer
from reliable.stores import Store
from reliable.testing import FakeClock
from test_idempotent_support import _close_loops, clock, events, mode, names  # noqa: F401

REAL_TIMEOUT = 5.0


def other_claim(store: Store, key: str, *, fp: str | None = None, lease: float = 60.0) -> int:
    """Write an IN_PROGRESS claim as another process would, and return its version."""
    policy = core.Policy("other", None, lease, True, (), JSONSerializer(), 10_000)
    record, created = store.put_if_absent(key, core.claim(policy, core.Call(key, fp, "otherhost:99:1")), ttl=lease)
    assert created
    return record.version


def eventually(check: Callable[[], bool]) -> None:
    """Wait (for real, in short steps) until *check* is true."""
    deadline = time.monotonic() + REAL_TIMEOUT
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


class Holder:
    """Runs a decorated function in a thread (sync, or async on the thread's own loop) that blocks until released."""

    def __init__(self, mode: str, store: Store, **options: Any) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.runs = 0
        self.outcome: list[Any] = []
        if mode == "sync":

            def body(key: str) -> str:
                self.runs += 1
                self.inside.set()
                assert self.release.wait(REAL_TIMEOUT)
                return f"done {key}"

            fn = reliable.idempotent(store=store, key=lambda key: key, **options)(body)
            self.call: Callable[[str], Any] = fn
        else:

            async def abody(key: str) -> str:
                self.runs += 1
                self.inside.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.005)
                return f"done {key}"

            afn = reliable.idempotent(store=store, key=lambda key: key, **options)(abody)
            self.call = lambda key: asyncio.run(afn(key))

    def start(self, key: str) -> threading.Thread:
        def target() -> None:
            try:
                self.outcome.append(self.call(key))
            except BaseException as exc:
                self.outcome.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        assert self.inside.wait(REAL_TIMEOUT)
        return thread

    def finish(self, thread: threading.Thread) -> Any:
        self.release.set()
        thread.join(REAL_TIMEOUT)
        return self.outcome[0]


# -- the same process ----------------------------------------------------------------------------


def test_hundred_tasks_one_execution(store: Store, clock: FakeClock) -> None:
    """100 concurrent asyncio tasks on one key: one execution and 100 equal results, and nobody polled the clock."""
    runs: list[int] = []

    @reliable.idempotent(store=store, key=lambda n: "one")
    async def work(n: int) -> dict[str, Any]:
        runs.append(n)
        await asyncio.sleep(0.001)
        return {"answer": 42, "items": (1, 2)}

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(work(0) for _ in range(100)))

    results = asyncio.run(main())

    assert (1, 100, []) == (len(runs), results.count({"answer": 42, "items": (1, 2)}), clock.sleeps)


def test_threads_one_execution(store: Store, clock: FakeClock) -> None:
    """16 threads on one key: one execution, 16 equal results, and the waiters never slept on the clock."""
    runs: list[int] = []
    gate = threading.Barrier(16)

    @reliable.idempotent(store=store, key=lambda: "one")
    def work() -> list[int]:
        runs.append(1)
        time.sleep(0.02)
        return [1, 2, 3]

    results: list[Any] = []

    def target() -> None:
        gate.wait()
        results.append(work())

    threads = [threading.Thread(target=target) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REAL_TIMEOUT)

    assert (1, [[1, 2, 3]] * 16, []) == (len(runs), results, clock.sleeps)


def test_local_duplicate_raises_with_on_in_progress_raise(store: Store, mode: str) -> None:
    """on_in_progress="raise": a duplicate in the same process raises InProgressError at once."""
    holder = Holder(mode, store, on_in_progress="raise")
    thread = holder.start("k")
    try:
        with pytest.raises(reliable.InProgressError):
            holder.call("k")
    finally:
        result = holder.finish(thread)

    assert ("done k", 1) == (result, holder.runs)


def test_reentrant_call_raises_instead_of_deadlocking(store: Store) -> None:
    """A function that calls itself with its own key gets InProgressError rather than waiting for itself."""

    @reliable.idempotent(store=store, key=lambda depth: "same")
    def recurse(depth: int) -> int:
        return depth if depth else recurse(depth + 1)

    with pytest.raises(reliable.InProgressError, match="from inside its own call"):
        recurse(0)


def test_waiters_run_again_after_the_holder_fails(store: Store) -> None:
    """When the holder raises, a waiting duplicate claims the key and runs itself."""
    started = threading.Event()
    release = threading.Event()
    runs: list[int] = []

    @reliable.idempotent(store=store, key=lambda: "k")
    def work() -> str:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            assert release.wait(REAL_TIMEOUT)
            raise RuntimeError("first attempt fails")
        return "second attempt"

    outcome: list[Any] = []

    def first() -> None:
        try:
            work()
        except RuntimeError as exc:
            outcome.append(exc)

    t1 = threading.Thread(target=first)
    t1.start()
    assert started.wait(REAL_TIMEOUT)
    t2 = threading.Thread(target=lambda: outcome.append(work()))
    t2.start()
    time.sleep(0.02)
    release.set()
    t1.join(REAL_TIMEOUT)
    t2.join(REAL_TIMEOUT)

    assert (2, "second attempt") == (len(runs), outcome[1])


def test_cancelled_async_holder_releases(store: Store) -> None:
    """A cancelled async holder releases its claim, so the next call runs."""
    runs: list[int] = []
    inside = asyncio.Event()

    @reliable.idempotent(store=store, key=lambda: "k")
    async def work() -> str:
        runs.append(1)
        if len(runs) == 1:
            inside.set()
            await asyncio.Event().wait()
        return "ran"

    async def main() -> str:
        task = asyncio.ensure_future(work())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await work()

    assert ("ran", 2) == (asyncio.run(main()), len(runs))


# -- another holder (another process or host) ------------------------------------------------------


def test_busy_key_raises_in_progress(store: Store, mode: str, clock: FakeClock) -> None:
    """A key claimed elsewhere raises InProgressError with on_in_progress="raise", naming the holder."""
    other_claim(store, "idempotent:busy:k")
    holder = Holder(mode, store, on_in_progress="raise", name="busy")

    with pytest.raises(reliable.InProgressError) as info:
        holder.call("k")

    assert ("otherhost:99:1", 0) == (info.value.owner, holder.runs)


def test_busy_key_polls_until_lease_expires_then_takes_over(
    store: Store, mode: str, clock: FakeClock, events: list[Any]
) -> None:
    """A claim held elsewhere is polled with backoff through the clock; after its lease the caller takes over."""
    other_claim(store, "idempotent:poll:k", lease=30)
    holder = Holder(mode, store, name="poll")
    holder.release.set()

    start = clock.time()
    result = holder.call("k")

    assert ("done k", 1) == (result, holder.runs)
    assert 30 <= clock.time() - start <= 31
    assert all(s <= 1.0 for s in clock.sleeps)
    assert [core.POLL_FIRST, core.POLL_FIRST * 2, core.POLL_FIRST * 4] == clock.sleeps[:3]
    assert ["wait", "takeover"] == [n for n in names(events) if n in ("wait", "takeover", "first_run")]


def test_busy_key_replays_when_the_other_holder_completes(store: Store, mode: str, clock: FakeClock) -> None:
    """A caller polling a key held elsewhere replays the other holder's result when it completes."""
    key = "idempotent:finish:k"
    version = other_claim(store, key)
    policy = core.Policy("finish", None, 60.0, True, (), JSONSerializer(), 10_000)
    original_sleep = clock.sleep

    def sleep_then_complete(seconds: float) -> None:
        original_sleep(seconds)
        if len(clock.sleeps) == 3:
            value, _, _ = core.complete(policy, core.Call(key, None, "otherhost:99:1"), "from the other process")
            assert store.compare_and_set(key, value, version=version, ttl=60) is not None

    clock.sleep = sleep_then_complete  # type: ignore[method-assign]
    clock.asleep = lambda s: asyncio.sleep(0, sleep_then_complete(s))  # type: ignore[method-assign]
    holder = Holder(mode, store, name="finish")

    assert ("from the other process", 0) == (holder.call("k"), holder.runs)


def test_stale_holder_gets_lease_lost_and_changes_nothing(
    store: Store, mode: str, clock: FakeClock, events: list[Any]
) -> None:
    """A holder whose lease expired and was taken over gets LeaseLostError; the new holder's record is untouched."""
    holder = Holder(mode, store, lease=30, name="stale")
    thread = holder.start("k")
    clock.advance(31)
    taken = other_claim(store, "idempotent:stale:k")

    error = holder.finish(thread)

    assert isinstance(error, reliable.LeaseLostError)
    assert "done k" == error.result
    record = store.get("idempotent:stale:k")
    assert record is not None
    assert (taken, "otherhost:99:1") == (record.version, (core.parse(record.value) or {}).get("owner"))
    assert "lease_lost" in names(events)


def test_stale_holder_that_raises_does_not_release_the_new_claim(store: Store, clock: FakeClock) -> None:
    """A stale holder whose function raises does not delete the new holder's claim."""
    inside, release = threading.Event(), threading.Event()

    @reliable.idempotent(store=store, key=lambda: "k", lease=30, name="stale-raise")
    def work() -> None:
        inside.set()
        assert release.wait(REAL_TIMEOUT)
        raise ValueError("late failure")

    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except ValueError as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    assert inside.wait(REAL_TIMEOUT)
    clock.advance(31)
    taken = other_claim(store, "idempotent:stale-raise:k")
    release.set()
    thread.join(REAL_TIMEOUT)

    record = store.get("idempotent:stale-raise:k")
    assert ("late failure", taken) == (str(errors[0]), record.version if record else None)


def test_expired_but_not_taken_over_still_completes(
    store: Store, mode: str, clock: FakeClock, events: list[Any]
) -> None:
    """A holder past its lease that nobody took over still stores its result, so the effect is not repeated."""
    holder = Holder(mode, store, lease=30, name="late")
    thread = holder.start("k")
    clock.advance(31)

    result = holder.finish(thread)

    assert ("done k", "done k", 1) == (result, holder.call("k"), holder.runs)
    assert "completed_late" in names(events)


def test_lease_is_renewed_while_the_function_runs(store: Store, mode: str, clock: FakeClock) -> None:
    """While the function runs, its claim is renewed: after 1.5 leases of fake time it is still held, and completes."""
    holder = Holder(mode, store, lease=30, name="renew")
    thread = holder.start("k")
    key = "idempotent:renew:k"
    for _ in range(3):
        before = store.get(key)
        assert before is not None
        clock.advance(15)
        eventually(lambda before=before: (now := store.get(key)) is not None and now.version != before.version)  # type: ignore[misc]

    record = store.get(key)
    result = holder.finish(thread)

    assert record is not None
    assert core.IN_PROGRESS == (core.parse(record.value) or {}).get("status")
    assert ("done k", "done k", 1) == (result, holder.call("k"), holder.runs)
