"""Heartbeats of `reliable.observed` in the store (every backend), judged by `reliable.health` with the fake clock."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import pytest

import reliable
from reliable._heartbeat import OP_PREFIX, RUN_PREFIX
from reliable._internal import _telemetry
from reliable.stores.memory import MemoryStore

if TYPE_CHECKING:
    from observed_support import Mode
    from reliable.stores import Store
    from reliable.testing import FakeClock

pytest_plugins = ["observed_support"]
"""Fixtures: name, clock, mode."""


def fail(message: str = "boom") -> Any:
    raise ValueError(message)


def test_success_then_stale_then_fresh(mode: Mode, store: Store, clock: FakeClock, name: str) -> None:
    """A success is recorded; with no success within max_age the operation is stale; the next success clears it."""
    observed = reliable.observed(name, max_age="30m", store=store, alert=False)
    mode.run(observed, lambda: 1)
    first = reliable.health(store=store)[name]
    clock.advance("31m")
    stale = reliable.health(store=store)[name]
    mode.run(observed, lambda: 2)
    fresh = reliable.health(store=store)[name]

    assert ("ok", pytest.approx(first.checked_at, abs=1), 1800.0) == (first.state, first.last_success, first.max_age)
    assert ("stale", ("stale",), True) == (stale.state, stale.problems, stale.stale)
    assert ("ok", pytest.approx(stale.checked_at, abs=1)) == (fresh.state, fresh.last_success)


def test_failure_recorded_with_error_and_duration(mode: Mode, store: Store, clock: FakeClock, name: str) -> None:
    """A failed run records time, error, error type, classification and duration; the operation is failing."""

    def body() -> None:
        clock.advance(3)
        fail("disk full")

    with pytest.raises(ValueError):
        mode.run(reliable.observed(name, heartbeat=True, store=store, alert=False), body)
    found = reliable.health(store=store)[name]

    assert found.last_failure is not None
    assert ("ValueError: disk full", "ValueError", "permanent", 3.0) == (
        found.last_failure.error,
        found.last_failure.error_type,
        found.last_failure.kind,
        found.last_failure.duration,
    )
    assert (pytest.approx(found.checked_at, abs=1), "failing", 1, None) == (
        found.last_failure.time,
        found.state,
        found.consecutive_failures,
        found.last_success,
    )


def test_failing_after_n_and_recovery_after_m(store: Store, clock: FakeClock, name: str) -> None:
    """failing_after=2: one failure is not failing; two are; recover_after=2: one success is not enough, two are."""
    job = reliable.observed(name, heartbeat=True, store=store, alert=False, failing_after=2, recover_after=2)
    states = []
    for outcome in ("error", "error", "ok", "ok"):
        with pytest.raises(ValueError) if outcome == "error" else _nothing():
            job(fail if outcome == "error" else (lambda: 1))()
        states.append(reliable.health(store=store)[name].state)

    assert ["ok", "failing", "failing", "ok"] == states


def test_degraded_run_makes_the_operation_degraded(mode: Mode, store: Store, clock: FakeClock, name: str) -> None:
    """A run whose result fails expect= leaves the operation degraded until an ok run."""
    observed = reliable.observed(name, expect=bool, heartbeat=True, store=store, alert=False)
    mode.run(observed, lambda: 0)
    degraded = reliable.health(store=store)[name].state
    mode.run(observed, lambda: 5)

    assert ("degraded", "ok") == (degraded, reliable.health(store=store)[name].state)


def test_concurrent_runs_are_tracked_separately(store: Store, clock: FakeClock, name: str) -> None:
    """Two runs in progress have their own run ids; both records go when the runs end."""
    observed = reliable.observed(name, heartbeat=True, store=store, alert=False)
    with observed as first, observed as second:
        running = reliable.health(store=store)[name].running
    after = reliable.health(store=store)[name].running

    assert sorted([first.run_id, second.run_id]) == sorted(r.run_id for r in running)
    assert first.run_id != second.run_id
    assert () == after
    assert [] == store.scan(RUN_PREFIX)


def test_stuck_run_and_renewal(store: Store, clock: FakeClock, name: str) -> None:
    """A run that neither finishes nor renews within max_runtime is stuck; a lock renewal inside marks it alive."""
    states = []
    with reliable.observed(name, max_runtime="1m", store=store, alert=False):
        states.append(reliable.health(store=store)[name].state)
        clock.advance(61)
        states.append(reliable.health(store=store)[name].state)
        _telemetry.emit("single_instance", "renewed", "renewed", attributes={"reliable.operation": name})
        states.append(reliable.health(store=store)[name].state)
    states.append(reliable.health(store=store)[name].state)

    assert ["ok", "stuck", "ok", "ok"] == states


def test_never_succeeded_is_stale_after_max_age(store: Store, clock: FakeClock, name: str) -> None:
    """An operation that has only failed since it was first seen is stale once max_age has passed."""
    job = reliable.observed(name, max_age=60, store=store, alert=False)(fail)
    with pytest.raises(ValueError):
        job()
    clock.advance(61)

    assert ("failing", "stale") == reliable.health(store=store)[name].problems


def test_skipped_run_changes_nothing_but_last_skip(store: Store, clock: FakeClock, name: str) -> None:
    """A run skipped by single_instance does not count as a success or a failure."""
    observed = reliable.observed(name, heartbeat=True, store=store, alert=False)
    observed(lambda: 1)()

    @observed
    def skipped() -> None:
        _telemetry.emit("single_instance", "skipped", "held", attributes={"reliable.operation": name})

    skipped()
    record = store.get(OP_PREFIX + name)

    assert record is not None
    assert ("ok", 1, pytest.approx(store.now(), abs=1)) == (
        record.value["last_outcome"],
        record.value["consecutive_successes"],
        record.value["last_skip"],
    )


def test_concurrent_runs_fold_into_one_summary(store: Store, clock: FakeClock, name: str) -> None:
    """Runs finishing at once in several threads are all counted (compare-and-set on the summary)."""
    job = reliable.observed(name, heartbeat=True, store=store, alert=False)(lambda: 1)

    def worker() -> None:
        for _ in range(5):
            job()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    record = store.get(OP_PREFIX + name)

    assert record is not None
    assert 20 == record.value["consecutive_successes"]


class CountingStore(MemoryStore):
    """A MemoryStore that counts every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __getattribute__(self, attr: str) -> Any:
        value = super().__getattribute__(attr)
        if not callable(value) or attr.startswith("_"):
            return value
        calls = super().__getattribute__("calls")

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(attr)
            return value(*args, **kwargs)

        return counted


def test_no_store_io_without_heartbeats(mode: Mode, name: str) -> None:
    """Without max_age, max_runtime or heartbeat=True, observed never touches the store (ok, degraded or error)."""
    store = CountingStore()
    mode.run(reliable.observed(name, store=store), lambda: 1)
    mode.run(reliable.observed(name, store=store, expect=bool, alert=False), lambda: 0)
    with pytest.raises(ValueError):
        mode.run(reliable.observed(name, store=store, alert=False), fail)

    assert [] == store.calls


class BrokenStore(MemoryStore):
    """A store whose every operation fails."""

    def __getattribute__(self, attr: str) -> Any:
        if attr.startswith("_") or not callable(super().__getattribute__(attr)):
            return super().__getattribute__(attr)

        def down(*args: Any, **kwargs: Any) -> Any:
            raise reliable.StoreUnavailableError("store down", address="memory://")

        return down


def test_store_failure_never_breaks_the_call(
    mode: Mode, clock: FakeClock, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With the store down, the observed call still runs and returns; the failure is reported as a warning."""
    caplog.set_level(logging.WARNING, logger="reliable.observed")

    result = mode.run(reliable.observed(name, max_age=60, store=BrokenStore(), alert=False), lambda: 42)

    assert 42 == result
    assert ["reliable.observed.heartbeat_failed"] == [
        r.reliable["event"]  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "reliable", {}).get("event") == "reliable.observed.heartbeat_failed"
    ]


def test_health_filters_by_name_and_async_twin(store: Store, clock: FakeClock, name: str) -> None:
    """health(names=...) returns only those operations; ahealth() reads the same as health()."""
    import asyncio

    reliable.observed(name, heartbeat=True, store=store)(lambda: 1)()
    reliable.observed(name + "-b", heartbeat=True, store=store)(lambda: 1)()

    only = reliable.health(store=store, names=[name])
    from reliable._health import ahealth

    both = asyncio.run(ahealth(store=store))

    assert [name] == list(only)
    assert [name, name + "-b"] == list(both)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None
