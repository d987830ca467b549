"""A completion the store could not take: kept in the process and stored by the next call of its key.

The function has run (its effect happened) when the store refuses the COMPLETED record for
longer than `_idempotency_finish.COMPLETE_TRIES` writes. The call raises StoreUnavailableError;
the next call of that key in this process stores the kept completion first and replays it,
instead of running the function a second time once the claim's lease ends.
"""

# ruff: noqa: F811  (pytest fixtures imported from test_idempotent_support are redefined as parameters)

from __future__ import annotations

from typing import Any

import pytest

from reliable import IdempotencyConflictError, InProgressError, StoreUnavailableError
from reliable import _idempotency_finish as finish
from reliable import _idempotency_local as local
from reliable._internal import _telemetry
from reliable.stores import Store
from reliable.testing import FakeClock, Faults
from test_idempotent_support import clock, events, idem, mode, names  # noqa: F401

DOWN = finish.COMPLETE_TRIES  # every completion write of one call fails


@pytest.fixture(autouse=True)
def _no_pending_left() -> Any:
    local._pending.clear()  # completions kept by other tests' failures
    yield
    local._pending.clear()


def test_completion_kept_and_stored_by_the_next_call(
    store: Store, mode: str, clock: FakeClock, events: list[_telemetry.Event]
) -> None:
    """The store refuses the result; the next call stores it and replays it without running again."""
    calls: list[int] = []
    with Faults() as faults:
        faulty = faults.wrap_store(store)
        g = idem(mode, lambda n: calls.append(n) or n * 10, store=faulty, name="pend", key=str, lease="30s")
        faults.fail("store.compare_and_set", times=DOWN)

        with pytest.raises(StoreUnavailableError):
            g(1)
        again = g(1)
        third = g(1)

    record = store.get("idempotent:pend:1")
    assert ([1], 10, 10) == (calls, again, third)
    assert record is not None
    assert b'"COMPLETED"' in record.value  # type: ignore[operator]
    assert {"completion_pending", "completed_late"} <= set(names(events))
    assert {} == local._pending


def test_store_still_down_keeps_the_completion(store: Store, mode: str, clock: FakeClock) -> None:
    """While the store stays down, later calls raise too and the completion stays kept; then it is stored."""
    calls: list[int] = []
    with Faults() as faults:
        faulty = faults.wrap_store(store)
        g = idem(mode, lambda n: calls.append(n) or n, store=faulty, name="still", lease="30s")
        faults.fail("store.compare_and_set", times=DOWN + 1)

        with pytest.raises(StoreUnavailableError):
            g(7)
        with pytest.raises(StoreUnavailableError):
            g(7)
        kept = len(local._pending)
        result = g(7)

    assert ([7], 1, 7, {}) == (calls, kept, result, local._pending)


def test_completion_after_the_lease_ended_is_stored_if_nobody_took_over(
    store: Store, mode: str, clock: FakeClock
) -> None:
    """The claim expired while the store was down, and nobody claimed the key: the result is still stored."""
    calls: list[int] = []
    with Faults() as faults:
        faulty = faults.wrap_store(store)
        g = idem(mode, lambda n: calls.append(n) or n, store=faulty, name="late", lease="30s")
        faults.fail("store.compare_and_set", times=DOWN)
        with pytest.raises(StoreUnavailableError):
            g(3)
        clock.advance(60)

        results = [g(3), g(3)]

    assert ([3], [3, 3]) == (calls, results)


def test_key_taken_over_meanwhile_drops_the_completion(
    store: Store, mode: str, clock: FakeClock, events: list[_telemetry.Event]
) -> None:
    """Another caller claimed the key after the lease ended: the kept completion is dropped, never written over it."""
    with Faults() as faults:
        faulty = faults.wrap_store(store)
        g = idem(mode, lambda n: n, store=faulty, name="taken", key=lambda n: "k", lease="30s", on_in_progress="raise")
        faults.fail("store.compare_and_set", times=DOWN)
        with pytest.raises(StoreUnavailableError):
            g(1)
    clock.advance(60)
    other = b'{"status":"IN_PROGRESS","owner":"elsewhere:1:1","fp":null,"lease":30.0}'
    store.put_if_absent("idempotent:taken:k", other, ttl=30)

    with pytest.raises(InProgressError):
        g(1)

    current = store.get("idempotent:taken:k")
    assert current is not None
    assert other == current.value
    assert "lease_lost" in names(events)
    assert {} == local._pending


def test_kept_completion_checks_the_arguments(store: Store, mode: str, clock: FakeClock) -> None:
    """The same key with other arguments is a conflict, as a replay would be; the completion stays kept."""
    with Faults() as faults:
        faulty = faults.wrap_store(store)
        g = idem(mode, lambda n, extra=0: n, store=faulty, name="fp", key=lambda n, extra=0: str(n), lease="30s")
        faults.fail("store.compare_and_set", times=DOWN)
        with pytest.raises(StoreUnavailableError):
            g(1)

        with pytest.raises(IdempotencyConflictError):
            g(1, extra=2)
        assert 1 == len(local._pending)
        assert 1 == g(1)


def test_too_many_kept_completions_are_not_kept(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table of kept completions is bounded; a call beyond it still raises, and is not kept."""
    monkeypatch.setattr(local, "_PENDING_MAX", 1)
    with Faults() as faults:
        faulty = faults.wrap_store(store)
        g = idem("sync", lambda n: n, store=faulty, name="full", lease="30s")
        faults.fail("store.compare_and_set", times=2 * DOWN)
        for n in (1, 2):
            with pytest.raises(StoreUnavailableError):
                g(n)

    assert 1 == len(local._pending)
