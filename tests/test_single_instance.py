"""`reliable.single_instance`: its four forms, on_conflict, re-entrancy, telemetry and argument checks (file locks)."""

# ruff: noqa: F811  (the events fixture is imported so that it, not conftest's plain list, is the one these tests get)

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reliable
from reliable import _config
from reliable._internal import _telemetry
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, installed
from test_single_instance_support import (
    REAL_TIMEOUT,
    Events,
    Holder,
    Mode,
    events,  # noqa: F401
    eventually,
    waiting_in_process,
)

pytest_plugins = ["test_single_instance_support"]
"""Fixtures: mode (the four forms), events (every single_instance event)."""


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Path) -> Iterator[Path]:
    """Every test gets its own lock directory through configure(lock_dir=...)."""
    directory = tmp_path / "locks"
    with _config.configured(lock_dir=directory):
        yield directory


def test_every_form_runs_the_body_with_a_lease(mode: Mode, lock_dir: Path) -> None:
    """With no conflict, each form runs the body once, holding a file lease with the holder metadata."""
    with installed(FakeClock(start=1_000_000.0)):
        seen = mode.run(reliable.single_instance("nightly"), lambda lease: lease)

    assert isinstance(seen, reliable.Lease)
    assert ("nightly", 1, 0, "file") == (seen.name, seen.token, seen.slot, seen.backend)
    assert (os.getpid(), 1_000_000.0) == (seen.pid, seen.since)
    assert str(lock_dir / "nightly.lock") == seen.where
    assert seen.released


def test_decorator_keeps_the_function(lock_dir: Path) -> None:
    """The decorator keeps name, docstring and coroutine-ness, and passes arguments and results through."""

    @reliable.single_instance("add")
    def add(a: int, *, b: int) -> int:
        """Add."""
        return a + b

    @reliable.single_instance("aadd")
    async def aadd(a: int, *, b: int) -> int:
        return a + b

    assert ("add", "Add.", 5) == (add.__name__, add.__doc__, add(2, b=3))
    assert inspect.iscoroutinefunction(aadd)
    assert 7 == asyncio.run(aadd(3, b=4))


def test_tokens_grow_with_every_holder(lock_dir: Path) -> None:
    """Each later holder of a name gets a larger fencing token."""
    lock = reliable.single_instance("tokens")
    tokens = []
    for _ in range(3):
        with lock as lease:
            tokens.append(lease.token)

    assert [1, 2, 3] == tokens


@pytest.mark.parametrize("use_async", [False, True], ids=["thread holder", "task holder"])
def test_skip_returns_the_sentinel_and_logs_who_holds_it(
    mode: Mode, use_async: bool, caplog: pytest.LogCaptureFixture, events: Events
) -> None:
    """on_conflict='skip' (the default) does not run the body, gives SKIPPED and logs the holder at INFO."""
    ran = []
    with Holder(reliable.single_instance("report"), use_async=use_async) as holder:
        with caplog.at_level(logging.INFO, logger="reliable.single_instance"):
            result = mode.run(reliable.single_instance("report"), ran.append)

    assert result is reliable.SKIPPED
    assert [] == ran
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert logging.INFO == record.levelno
    assert f"skipped: already running (held by pid {os.getpid()} on {holder.lease.host} since " in record.getMessage()
    (skipped,) = events.named("skipped")
    assert ("report", os.getpid(), holder.lease.token) == (
        skipped.attributes["reliable.operation"],
        skipped.attributes["reliable.lock.holder.pid"],
        skipped.attributes["reliable.lock.token"],
    )


def test_skipped_is_a_falsy_singleton() -> None:
    """SKIPPED is one falsy value with a clear repr, an instance of reliable.Skipped."""
    assert not reliable.SKIPPED
    assert "reliable.SKIPPED" == repr(reliable.SKIPPED) == str(reliable.SKIPPED)
    assert isinstance(reliable.SKIPPED, reliable.Skipped)


def test_raise_names_the_holder(mode: Mode) -> None:
    """on_conflict='raise' raises AlreadyRunningError at once, naming pid, host and what to do."""
    with Holder(reliable.single_instance("report")) as holder:
        with pytest.raises(reliable.AlreadyRunningError) as caught:
            mode.run(reliable.single_instance("report", on_conflict="raise"), lambda lease: lease)

    message = str(caught.value)
    assert f"held by pid {os.getpid()} on {holder.lease.host}" in message
    assert "on_conflict='wait'" in message
    assert "report" == caught.value.name  # type: ignore[attr-defined]
    assert [holder.lease.token] == [h["token"] for h in caught.value.holders]  # type: ignore[attr-defined]


def test_wait_runs_after_the_holder_releases(mode: Mode, events: Events) -> None:
    """on_conflict='wait' blocks on the in-process signal and runs once the holder is done, never during."""
    order: list[str] = []
    holder = Holder(reliable.single_instance("report"))
    with holder:
        waiter = threading.Thread(
            target=lambda: order.append(
                f"ran after {mode.run(reliable.single_instance('report', on_conflict='wait'), lambda lease: 'x')}"
            )
        )
        waiter.start()
        eventually(lambda: waiting_in_process("report"))
        order.append("holder releases")
    waiter.join(REAL_TIMEOUT)

    assert ["holder releases", "ran after x"] == order
    (waited,) = events.named("waited")
    assert waited.attributes["reliable.lock.acquired"] is True


def test_wait_gives_up_after_the_timeout(mode: Mode, events: Events) -> None:
    """on_conflict='wait' with a timeout raises AlreadyRunningError once the timeout passed, saying it waited."""
    with Holder(reliable.single_instance("report")):
        with pytest.raises(reliable.AlreadyRunningError, match="still running after waiting"):
            mode.run(reliable.single_instance("report", on_conflict="wait", timeout=0.03), lambda lease: lease)

    (waited,) = events.named("waited")
    assert waited.attributes["reliable.lock.acquired"] is False
    assert waited.attributes["reliable.lock.waited_s"] >= 0.03


@pytest.mark.parametrize("on_conflict", ["skip", "wait", "raise"])
def test_reentrant_use_is_refused(on_conflict: str) -> None:
    """Taking the same lock again in the same thread raises at once (no deadlock, no silent second holder)."""
    with reliable.single_instance("outer"):
        with pytest.raises(reliable.AlreadyRunningError, match="not re-entrant") as caught:
            with reliable.single_instance("outer", on_conflict=on_conflict):
                pass

    assert caught.value.reentrant is True  # type: ignore[attr-defined]


def test_reentrant_use_in_a_task_is_refused() -> None:
    """Taking the same lock again in the same asyncio task raises AlreadyRunningError."""

    async def main() -> None:
        async with reliable.single_instance("outer"):
            async with reliable.single_instance("outer", on_conflict="wait"):
                pass

    with pytest.raises(reliable.AlreadyRunningError, match="same task"):
        asyncio.run(main())


def test_tasks_of_one_loop_exclude_each_other() -> None:
    """Another task of the same loop is another holder: it skips, or waits on the in-process signal."""
    order: list[str] = []

    async def holder(started: asyncio.Event, release: asyncio.Event) -> None:
        async with reliable.single_instance("job"):
            order.append("holder in")
            started.set()
            await release.wait()
            order.append("holder out")

    async def main() -> Any:
        started, release = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(holder(started, release))
        await started.wait()
        async with reliable.single_instance("job") as skipped:
            pass

        async def waiter() -> None:
            async with reliable.single_instance("job", on_conflict="wait"):
                order.append("waiter in")

        waiting = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(task, waiting)
        return skipped

    assert reliable.SKIPPED is asyncio.run(main())
    assert ["holder in", "holder out", "waiter in"] == order


def test_sync_wait_on_the_loop_thread_refuses_to_deadlock() -> None:
    """A blocking wait in the thread whose event loop runs the holder task raises instead of hanging."""

    async def main() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with reliable.single_instance("job"):
                started.set()
                await release.wait()

        task = asyncio.create_task(holder())
        await started.wait()
        try:
            with reliable.single_instance("job", on_conflict="wait", timeout=5):
                pass
        finally:
            release.set()
            await task

    with pytest.raises(reliable.AlreadyRunningError, match="block its event loop"):
        asyncio.run(main())


def test_nested_with_blocks_of_one_object_in_two_threads() -> None:
    """One SingleInstance object used by two threads keeps each thread's lease apart."""
    lock = reliable.single_instance("shared", limit=2)
    leases: list[Any] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        with lock as lease:
            barrier.wait(REAL_TIMEOUT)
            leases.append((lease, lock.lease))
            barrier.wait(REAL_TIMEOUT)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REAL_TIMEOUT)

    assert [True, True] == [a is b for a, b in leases]
    assert {0, 1} == {a.slot for a, _ in leases}
    assert lock.lease is None


def test_telemetry_reports_acquired_and_released_with_hold_time(events: Events) -> None:
    """acquired and released events carry the operation, token and (released) the hold time on the library clock."""
    with installed(FakeClock()) as clock:
        with reliable.single_instance("timed") as lease:
            clock.advance(5)

    (acquired,) = events.named("acquired")
    (released,) = events.named("released")
    assert ("timed", lease.token) == (
        acquired.attributes["reliable.operation"],
        acquired.attributes["reliable.lock.token"],
    )
    assert 5.0 == released.attributes["reliable.lock.held_s"]


def test_scoped_listener_sees_the_skip() -> None:
    """A listener of the caller's context (as observed uses) sees the skipped event."""
    seen: list[str] = []
    with Holder(reliable.single_instance("job")):
        with _telemetry.listening(lambda e: seen.append(e.name)):
            reliable.single_instance("job").acquire()

    assert ["reliable.single_instance.skipped"] == seen


def test_released_lease_fails_its_check() -> None:
    """After release, check() raises LeaseLostError; release is idempotent."""
    with reliable.single_instance("job") as lease:
        lease.check()
    lease.release()

    with pytest.raises(reliable.LeaseLostError, match="was released"):
        lease.check()


def test_configured_store_is_used_for_locks() -> None:
    """configure(locks='store') puts leases in the configured store; the default stays file locks."""
    store = MemoryStore()
    with _config.configured(store=store, locks="store"):
        with reliable.single_instance("job") as lease:
            keys = [r.key for r in store.scan("lock:")]

    assert ("store", ["lock:job:0"]) == (lease.backend, keys)


def test_default_lock_dir_is_under_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without configuration, lock files live in $XDG_STATE_HOME/reliable/locks; RELIABLE_LOCK_DIR overrides."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("RELIABLE_LOCK_DIR", raising=False)
    with _config.configured(lock_dir=None):
        with reliable.single_instance("job") as first:
            pass
        monkeypatch.setenv("RELIABLE_LOCK_DIR", str(tmp_path / "env"))
        with reliable.single_instance("job") as second:
            pass

    assert str(tmp_path / "state" / "reliable" / "locks" / "job.lock") == first.where
    assert str(tmp_path / "env" / "job.lock") == second.where


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"on_conflict": "ignore"}, "on_conflict"),
        ({"timeout": 5}, "timeout"),
        ({"on_conflict": "wait", "timeout": -1}, "timeout"),
        ({"on_conflict": "wait", "timeout": "soon"}, "timeout"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": 0.01}, "ttl"),
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": "3"}, "limit"),
        ({"store": object()}, "store"),
        ({"store": "mysql://x"}, "store"),
        ({"lock_dir": 3}, "lock_dir"),
    ],
)
def test_bad_arguments_raise_config_error_before_any_lock(
    kwargs: dict[str, Any], parameter: str, lock_dir: Path
) -> None:
    """Each invalid argument raises ConfigError naming it, when single_instance() is called, touching no file."""
    arguments = {"name": "job", **kwargs}

    with pytest.raises(reliable.ConfigError) as caught:
        reliable.single_instance(**arguments)

    assert parameter == caught.value.parameter  # type: ignore[attr-defined]
    assert parameter in str(caught.value)
    assert not lock_dir.exists()


def test_generator_functions_cannot_be_decorated() -> None:
    """Decorating a generator function raises ConfigError: the lock would end before the generator runs."""

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(reliable.ConfigError, match="generator"):
        reliable.single_instance("job")(gen)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [({"locks": "redis"}, "locks"), ({"lock_network_fs": "maybe"}, "lock_network_fs"), ({"lock_dir": 3}, "lock_dir")],
)
def test_configure_checks_lock_settings(kwargs: dict[str, Any], parameter: str) -> None:
    """configure() refuses unknown lock settings with ConfigError naming the parameter."""
    with pytest.raises(reliable.ConfigError) as caught:
        reliable.configure(**kwargs)

    assert parameter == caught.value.parameter  # type: ignore[attr-defined]
