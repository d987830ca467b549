"""`reliable.idempotency(key)`: the block form, for work that is not a function."""

# ruff: noqa: F811  (pytest fixtures imported from test_idempotent_support are redefined as parameters)

from __future__ import annotations

import threading
from typing import Any

import pytest

import reliable
from reliable.stores import Store
from test_idempotent_support import _close_loops, events, names, run  # noqa: F401


def enter(store: Store, mode: str, work: Any, key: str = "invoice:1", **options: Any) -> tuple[bool, Any]:
    """Run *work()* inside an idempotency block if this caller must; return (needed, result)."""
    if mode == "sync":
        with reliable.idempotency(key, store=store, **options) as step:
            if step.needed:
                step.result = work()
        return step.needed, step.result

    async def main() -> tuple[bool, Any]:
        async with reliable.idempotency(key, store=store, **options) as step:
            if step.needed:
                step.result = work()
        return step.needed, step.result

    return run(main())


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """The block runs as ``with`` and as ``async with``."""
    return str(request.param)


def test_first_entry_does_the_work_later_ones_replay(store: Store, mode: str) -> None:
    """The first entry is needed and stores its result; the next one is not needed and reads that result."""
    runs: list[int] = []

    def work() -> dict[str, Any]:
        runs.append(1)
        return {"sent": True, "at": (2024, 1)}

    first = enter(store, mode, work)
    second = enter(store, mode, work)

    assert ((True, {"sent": True, "at": (2024, 1)}), (False, {"sent": True, "at": (2024, 1)}), [1]) == (
        first,
        second,
        runs,
    )


def test_result_not_set_is_stored_as_none(store: Store, mode: str) -> None:
    """A block that does the work without setting result stores None, and later entries are not needed."""
    assert ((True, None), (False, None)) == (enter(store, mode, lambda: None), enter(store, mode, lambda: 1))


def test_exception_releases_the_key(store: Store, mode: str, events: list[Any]) -> None:
    """An exception leaving the block releases the key, so the next entry does the work."""

    def boom() -> None:
        raise ConnectionError("smtp down")

    with pytest.raises(ConnectionError):
        enter(store, mode, boom)

    assert (True, "sent") == enter(store, mode, lambda: "sent")
    assert "released" in names(events)


def test_cached_error_is_raised_on_entry(store: Store, mode: str) -> None:
    """An exception listed in cache_errors is recorded; the next entry raises it without doing the work."""
    runs: list[int] = []

    def refuse() -> None:
        runs.append(1)
        raise PermissionError("address blocked")

    with pytest.raises(PermissionError):
        enter(store, mode, refuse, cache_errors=PermissionError)
    with pytest.raises(PermissionError, match="address blocked"):
        enter(store, mode, refuse, cache_errors=PermissionError)

    assert [1] == runs


def test_fingerprint_conflict(store: Store, mode: str) -> None:
    """The same key with another fingerprint value raises IdempotencyConflictError."""
    enter(store, mode, lambda: 1, fingerprint={"to": "a@example.com"})

    with pytest.raises(reliable.IdempotencyConflictError):
        enter(store, mode, lambda: 1, fingerprint={"to": "b@example.com"})
    assert (False, 1) == enter(store, mode, lambda: 2, fingerprint={"to": "a@example.com"})


def test_block_and_decorator_share_a_namespace(store: Store) -> None:
    """A block and a decorated function with the same name and key share one record."""
    with reliable.idempotency("42", name="invoices", store=store) as step:
        step.result = "from the block"

    send = reliable.idempotent(store=store, name="invoices", key=lambda n: str(n))(lambda n: "from the function")

    assert "from the function" != send(42)
    assert "from the block" == send(42)


def test_threads_one_block_runs(store: Store) -> None:
    """Eight threads enter the same block at once: one does the work, all see its result."""
    gate = threading.Barrier(8)
    runs: list[int] = []
    results: list[tuple[bool, Any]] = []

    def worker() -> None:
        gate.wait()
        results.append(enter(store, "sync", lambda: runs.append(1) or "done", key="shared"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert (1, 1, ["done"] * 8) == (len(runs), sum(needed for needed, _ in results), [r for _, r in results])


def test_entering_twice_is_an_error(store: Store) -> None:
    """One idempotency block object can be entered once."""
    block = reliable.idempotency("once", store=store)
    with block:
        pass

    with pytest.raises(reliable.ConfigError, match="entered once"), block:
        pass


@pytest.mark.parametrize(
    ("args", "options", "parameter"),
    [(("",), {}, "key"), ((42,), {}, "key"), (("k",), {"name": ""}, "name"), (("k",), {"lease": -1}, "lease")],
)
def test_bad_arguments(args: tuple[Any, ...], options: dict[str, Any], parameter: str) -> None:
    """A bad key, name or setting raises ConfigError naming the parameter, before anything is stored."""
    with pytest.raises(reliable.ConfigError) as info:
        reliable.idempotency(*args, **options)

    assert parameter == info.value.parameter


def test_uncomparable_fingerprint() -> None:
    """A fingerprint value without a canonical form raises ConfigError."""
    with pytest.raises(reliable.ConfigError, match="fingerprint"):
        reliable.idempotency("k", fingerprint=object())
