"""Keeping an idempotency claim alive while its function runs.

A claim is written with the store TTL set to the lease, so it vanishes on its own if its
holder dies. While the holder runs, its claim is renewed every third of the lease by a
compare-and-set on the version it last wrote, which also moves the store TTL forward:

- blocking holders share one daemon thread per process (a heap of due renewals), so a call
  that finishes before its first renewal costs a heap push and a flag, not a thread;
- asyncio holders renew from their own event loop (``loop.call_later``).

A renewal that finds another version (the claim expired and someone took it over) marks the
lease lost and stops; the holder's completion then fails its compare-and-set too, so a stale
holder never overwrites anyone. Due times are on the library clock; the waits between them
are real (a renewal must happen while the function runs in real time), and under a fake
clock they are cut to 50 ms so that moving the fake clock is noticed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import threading
from typing import Any

from ._internal import _clock
from ._internal._telemetry import emit

__all__ = ["AsyncLease", "Lease", "hold", "hold_async"]

FAKE_CLOCK_POLL = 0.05
IDLE_CHECK = 1.0
"""With nothing due, the renewal thread still looks every second, so a new lease due later than that
needs no wake-up: a call that finishes quickly never makes the thread run (no GIL hand-off)."""
IDLE_FOREVER = 60.0
"""After a minute with nothing to renew, the thread sleeps until the next lease arrives."""


class Lease:
    """A claim renewed in the background while its holder runs."""

    __slots__ = ("active", "due", "key", "lock", "lost", "operation", "seconds", "store", "value", "version")

    def __init__(self, store: Any, key: str, value: bytes, version: int, seconds: float, operation: str) -> None:
        self.store = store
        self.key = key
        self.value = value
        self.version = version
        self.seconds = seconds
        self.operation = operation
        self.active = True
        self.lost = False
        self.lock = threading.Lock()
        self.due = 0.0

    def stop(self) -> int:
        """Stop renewing (waiting for a renewal under way) and return the claim's current version."""
        with self.lock:
            self.active = False
            _renewer.forget()
            return self.version

    def renew(self) -> bool:
        """Renew once; return whether to keep renewing."""
        with self.lock:
            if not self.active:
                return False
            try:
                record = self.store.compare_and_set(self.key, self.value, version=self.version, ttl=self.seconds)
            except Exception as exc:
                _renew_failed(self.operation, self.key, exc)
                return True
            return _renewed(self, record)


class AsyncLease(Lease):
    """A claim renewed from its holder's event loop."""

    __slots__ = ("handle", "loop", "task")

    def __init__(self, store: Any, key: str, value: bytes, version: int, seconds: float, operation: str) -> None:
        super().__init__(store, key, value, version, seconds, operation)
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[None] | None = None
        self.handle: asyncio.TimerHandle | None = None

    async def astop(self) -> int:
        """Stop renewing (waiting for a renewal under way) and return the claim's current version."""
        self.active = False
        if self.handle is not None:
            self.handle.cancel()
        task = self.task
        if task is not None and not task.done():
            await asyncio.shield(task)
        return self.version

    def _tick(self) -> None:
        if not self.active:
            return
        now = _clock.current().monotonic()
        if now < self.due:
            self.handle = self.loop.call_later(_real_wait(self.due - now), self._tick)
            return
        self.task = self.loop.create_task(self._arenew())

    async def _arenew(self) -> None:
        try:
            record = await self.store.acompare_and_set(self.key, self.value, version=self.version, ttl=self.seconds)
        except Exception as exc:
            _renew_failed(self.operation, self.key, exc)
            record = _KEEP
        if self.active and (record is _KEEP or _renewed(self, record)):
            self.due = _clock.current().monotonic() + self.seconds / 3
            self.handle = self.loop.call_later(_real_wait(self.seconds / 3), self._tick)


_KEEP: Any = object()


def _renewed(lease: Lease, record: Any) -> bool:
    if record is None:
        lease.active = False
        lease.lost = True
        emit(
            "idempotent",
            "lease_lost",
            f"claim on {lease.key!r} of {lease.operation!r} expired before it could be renewed",
            level=logging.WARNING,
            attributes={"reliable.operation": lease.operation, "reliable.idempotency_key": lease.key},
        )
        return False
    lease.version = record.version
    return True


def _renew_failed(operation: str, key: str, exc: Exception) -> None:
    emit(
        "idempotent",
        "renew_failed",
        f"could not renew the claim on {key!r} of {operation!r}; retrying at the next interval",
        level=logging.WARNING,
        attributes={"reliable.operation": operation, "reliable.idempotency_key": key},
        exception=exc,
    )


def _real_wait(seconds: float) -> float:
    """How long to wait for real before looking at the library clock again."""
    if isinstance(_clock.current(), _clock.SystemClock):
        return max(seconds, 0.0)
    return min(max(seconds, 0.0), FAKE_CLOCK_POLL)


class _Renewer:
    """One daemon thread renewing the blocking holders' claims, started on first use."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.heap: list[tuple[float, int, Lease]] = []
        self.seq = itertools.count()
        self.thread: threading.Thread | None = None
        self.stopped = 0
        self.waiting: tuple[object, float] | None = None
        """The clock and the time the thread wakes up at; None when it sleeps until notified."""
        self.idle_since: float | None = None

    def add(self, lease: Lease) -> None:
        clock = _clock.current()
        lease.due = clock.monotonic() + lease.seconds / 3
        with self.cond:
            heapq.heappush(self.heap, (lease.due, next(self.seq), lease))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="reliable-idempotent-leases", daemon=True)
                self.thread.start()
                return
            waiting = self.waiting
            if waiting is None or waiting[0] is not clock or lease.due < waiting[1]:
                self.cond.notify()

    def forget(self) -> None:
        """Count a stopped lease; compact the heap when stopped ones are most of it."""
        with self.cond:
            self.stopped += 1
            if self.stopped > 1024 and self.stopped * 2 > len(self.heap):
                self.heap = [entry for entry in self.heap if entry[2].active]
                heapq.heapify(self.heap)
                self.stopped = 0

    def _run(self) -> None:
        while True:
            lease = self._next()
            if lease.renew():
                self.add(lease)

    def _next(self) -> Lease:
        with self.cond:
            while True:
                while self.heap and not self.heap[0][2].active:
                    heapq.heappop(self.heap)
                clock = _clock.current()
                now = clock.monotonic()
                if not self.heap:
                    if self.idle_since is None:
                        self.idle_since = now
                    if now - self.idle_since >= IDLE_FOREVER:
                        self.waiting = None
                        self.cond.wait()
                        self.idle_since = None
                    else:
                        self.waiting = (clock, now + IDLE_CHECK)
                        self.cond.wait(_real_wait(IDLE_CHECK))
                    continue
                self.idle_since = None
                due = self.heap[0][0]
                if due <= now:
                    self.waiting = None
                    return heapq.heappop(self.heap)[2]
                self.waiting = (clock, due)
                self.cond.wait(_real_wait(due - now))

    def reset_after_fork(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.heap = []
        self.thread = None
        self.stopped = 0
        self.waiting = None
        self.idle_since = None


_renewer = _Renewer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renewer.reset_after_fork)


def hold(store: Any, key: str, value: bytes, version: int, seconds: float, operation: str) -> Lease:
    """Start renewing the claim *version* of *key* in the shared renewal thread."""
    lease = Lease(store, key, value, version, seconds, operation)
    _renewer.add(lease)
    return lease


def hold_async(store: Any, key: str, value: bytes, version: int, seconds: float, operation: str) -> AsyncLease:
    """Start renewing the claim *version* of *key* from the running event loop."""
    lease = AsyncLease(store, key, value, version, seconds, operation)
    lease.due = _clock.current().monotonic() + seconds / 3
    lease.handle = lease.loop.call_later(_real_wait(seconds / 3), lease._tick)
    return lease
