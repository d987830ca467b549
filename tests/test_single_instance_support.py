"""Helpers for the single_instance tests: the four forms, a holder thread, event capture, and child processes.

The child-process entry points live here (not in a test module) so spawn and forkserver
children can import them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import reliable
from reliable._internal import _telemetry
from reliable._internal._telemetry import Event

REAL_TIMEOUT = 60.0
"""Real seconds a test waits for another thread or process before failing (never reached when it passes)."""


class Mode:
    """Run a body under a `single_instance` as a decorator or a context manager, sync or async."""

    def __init__(self, form: str) -> None:
        self.form = form

    def __repr__(self) -> str:
        return self.form

    @property
    def is_async(self) -> bool:
        return self.form.startswith("async")

    def run(self, lock: reliable._single_instance.SingleInstance[Any], body: Callable[[Any], Any]) -> Any:
        """Run ``body(lease)`` holding *lock*; return its result, or `reliable.SKIPPED` if the run was skipped."""
        if self.form == "decorator":

            @lock
            def job() -> Any:
                return body(lock.lease)

            return job()
        if self.form == "async decorator":

            @lock
            async def ajob() -> Any:
                await asyncio.sleep(0)
                return body(lock.lease)

            return asyncio.run(ajob())
        if self.form == "with":
            with lock as lease:
                return lease if lease is reliable.SKIPPED else body(lease)

        async def main() -> Any:
            async with lock as lease:
                await asyncio.sleep(0)
                return lease if lease is reliable.SKIPPED else body(lease)

        return asyncio.run(main())


@pytest.fixture(params=["with", "async with", "decorator", "async decorator"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Every form of single_instance: context manager and decorator, sync and async."""
    return Mode(request.param)


class Holder:
    """Holds a lock in a thread of this process until told to release it."""

    def __init__(self, lock: reliable._single_instance.SingleInstance[Any], *, use_async: bool = False) -> None:
        self.lock = lock
        self.inside = threading.Event()
        self.release = threading.Event()
        self.lease: Any = None
        self.error: BaseException | None = None
        target = self._arun if use_async else self._run
        self.thread = threading.Thread(target=target, daemon=True)

    def _run(self) -> None:
        try:
            with self.lock as lease:
                self.lease = lease
                self.inside.set()
                assert self.release.wait(REAL_TIMEOUT)
        except BaseException as exc:  # reported by stop()
            self.error = exc
            self.inside.set()

    def _arun(self) -> None:
        async def main() -> None:
            async with self.lock as lease:
                self.lease = lease
                self.inside.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.001)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc
            self.inside.set()

    def __enter__(self) -> Holder:
        self.thread.start()
        assert self.inside.wait(REAL_TIMEOUT)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(REAL_TIMEOUT)
        assert not self.thread.is_alive()


class Events:
    """Every single_instance event emitted while the fixture is active, from any thread."""

    def __init__(self) -> None:
        self.all: list[Event] = []
        self.cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        if event.primitive == "single_instance":
            with self.cond:
                self.all.append(event)
                self.cond.notify_all()

    def named(self, name: str) -> list[Event]:
        with self.cond:
            return [e for e in self.all if e.event == name]

    def wait_for(self, name: str, count: int = 1) -> list[Event]:
        """Wait (in real time, bounded) until *count* events called *name* arrived; return them."""
        with self.cond:
            assert self.cond.wait_for(lambda: len([e for e in self.all if e.event == name]) >= count, REAL_TIMEOUT)
            return [e for e in self.all if e.event == name]


@pytest.fixture
def events() -> Iterator[Events]:
    capture = Events()
    _telemetry.add_listener(capture)
    yield capture
    _telemetry.remove_listener(capture)


def waiting_in_process(name: str) -> bool:
    """Whether a thread or task of this process waits on the in-process signal for lock *name*."""
    from reliable import _lock_registry

    return any(
        key[-1] == name and (entry.waiters or entry.futures)
        for key, entry in list(_lock_registry._entries.items())
        if isinstance(key, tuple)
    )


def eventually(check: Callable[[], bool]) -> None:
    """Wait in short real steps until *check* is true (bounded)."""
    deadline = time.monotonic() + REAL_TIMEOUT
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


# -- child processes (spawn / forkserver) -------------------------------------------------------


def append(path: str, line: str) -> None:
    """Append one line with a single O_APPEND write (atomic with respect to other appenders)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _lock_for(kind: str, where: str, **options: Any) -> reliable._single_instance.SingleInstance[Any]:
    if kind == "file":
        return reliable.single_instance("job", lock_dir=where, **options)
    return reliable.single_instance("job", store=where, **options)


def race_child(kind: str, where: str, log: str, rounds: int, barrier: Any, options: dict[str, Any]) -> None:
    """Start the job together with the other processes, *rounds* times; log start and end of every run."""
    me = os.getpid()
    lock = _lock_for(kind, where, **options)
    for i in range(rounds):
        barrier.wait(REAL_TIMEOUT)
        with lock as lease:
            if lease is reliable.SKIPPED:
                continue
            append(log, f"S {me} {i} {lease.token}")
            for _ in range(3):  # some work, giving the other process time to overlap if it could
                os.sched_yield()
                time.sleep(0.001)
            append(log, f"E {me} {i} {lease.token}")


def limit_child(kind: str, where: str, log: str, rounds: int, start: Any) -> None:
    """With the others, take one of three slots *rounds* times, holding it a while; log start and end of each run."""
    me = os.getpid()
    lock = _lock_for(kind, where, limit=3, on_conflict="wait", timeout=REAL_TIMEOUT)
    for i in range(rounds):
        start.wait(REAL_TIMEOUT)  # a barrier: every process tries at the same moment
        with lock as lease:
            append(log, f"S {me} {i} {lease.token}")
            time.sleep(0.02)
            append(log, f"E {me} {i} {lease.token}")


def hold_child(kind: str, where: str, ttl: float, conn: Any) -> None:
    """Acquire, report ``(pid, token)``, then obey the parent: ``"check"`` answers with the check's outcome."""
    lock = _lock_for(kind, where, ttl=ttl, on_conflict="raise")
    lease = lock.acquire()
    assert isinstance(lease, reliable.Lease)
    conn.send((os.getpid(), lease.token))
    while True:
        if not conn.poll(REAL_TIMEOUT * 3):
            return
        command = conn.recv()
        if command == "check":
            try:
                lease.check()
            except reliable.LeaseLostError as exc:
                conn.send(("lost", str(exc)))
            else:
                conn.send(("held", ""))
        else:
            return


def hold_forever_child(lock_dir: str, ready: Any) -> None:
    """Take the file lock and keep it until killed."""
    lease = reliable.single_instance("job", lock_dir=lock_dir, on_conflict="raise").acquire()
    ready.send(lease.token)
    time.sleep(REAL_TIMEOUT * 3)
    sys.exit(1)


def read_runs(log: Path) -> list[tuple[str, int, int, int]]:
    runs = []
    for line in log.read_text().splitlines():
        kind, pid, i, token = line.split()
        runs.append((kind, int(pid), int(i), int(token)))
    return runs


def max_concurrency(runs: list[tuple[str, int, int, int]]) -> int:
    """The most runs inside at once, from the ordered start/end markers."""
    inside = best = 0
    for kind, *_ in runs:
        inside += 1 if kind == "S" else -1
        best = max(best, inside)
    return best
