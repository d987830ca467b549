"""One background renewer thread per store, shared by every sync store lease of this process.

A lease taken with ``with`` or by a sync function is renewed by the renewer of its store:
a daemon thread with a heap of due times (library-clock seconds), started by the first
lease on that store and ended after `IDLE` real seconds without leases, so taking and
releasing a lease costs a heap push and a flag, not a thread start and join. Leases on
different stores never wait for each other (a store that hangs delays only its own
leases' renewals); leases on one store share its fate anyway.

The thread runs each renewal through the lease (``lease._renew_in_background()``, which
runs in a copy of the acquiring context), outside the lock. It waits for due times on a
condition in real time, never by sleeping on the clock: with the system clock until the
next renewal is due (or a lease with an earlier one arrives), with any other clock (a
test's `FakeClock`) it looks again every `FAKE_CLOCK_POLL` seconds, so ``clock.advance()``
triggers the renewals that became due, once each.

`cancel` stops renewing a lease; if its renewal is running, it waits for that renewal to
end (at most the lease's TTL), so a release never races its own renewal. After ``fork()``
the child starts with no renewers: its parent's threads do not exist there, and a lease
inherited from the parent is never renewed by the child.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import threading
from typing import Any

from . import _lock_registry
from ._internal import _clock

__all__ = ["FAKE_CLOCK_POLL", "IDLE", "cancel", "schedule"]

FAKE_CLOCK_POLL = 0.005
"""Real seconds between the renewer's looks at a clock that is not the system clock."""
IDLE = 10.0
"""Real seconds a renewer thread with no lease to renew waits for one before it ends."""
_COMPACT = 64
"""Rebuild a heap once it holds more than this many cancelled entries, and they are more than half of it."""

_lock = threading.Lock()
_renewers: dict[int, _Renewer] = {}
"""id(store) -> its renewer. A renewer holds its store, so the id names that store for as long as the entry lives."""
_order = itertools.count()

Entry = list[Any]
"""``[due, order, lease]``: a heap entry; a cancelled one has lease None and is dropped when it surfaces."""


class _Renewer:
    __slots__ = ("cancelled", "current", "heap", "pid", "ready", "store", "thread", "wake_at", "wake_clock")

    def __init__(self, store: Any) -> None:
        self.store = store
        self.heap: list[Entry] = []
        self.cancelled = 0
        self.current: Any = None
        self.pid = _lock_registry.pid
        self.ready = threading.Condition(_lock)
        self.thread = threading.Thread(target=self._run, name="reliable-lease-renewer", daemon=True)
        self.wake_at = math.inf
        """When the waiting thread looks at the heap again by itself (on `wake_clock`); inf: only when notified."""
        self.wake_clock: Any = None

    def _run(self) -> None:
        with self.ready:
            try:
                while self._next():
                    lease = self.current
                    self.ready.release()
                    try:
                        keep = lease._renew_in_background()
                    finally:
                        self.ready.acquire()
                        self.current = None
                        self.ready.notify_all()
                    if keep and lease._renewer is self:
                        self._push(lease)
            finally:  # idle, or (never expected) failed: the next lease on this store starts a new renewer
                if _renewers.get(id(self.store)) is self:
                    del _renewers[id(self.store)]

    def _next(self) -> bool:
        """Wait until a lease is due and make it `current` (True), or end an idle renewer (False). Holds the lock."""
        heap = self.heap
        while True:
            while heap and heap[0][2] is None:
                heapq.heappop(heap)
                self.cancelled -= 1
            clock = _clock.current()
            system = isinstance(clock, _clock.SystemClock)
            now = clock.monotonic()
            self.wake_clock = clock
            if not heap:
                self.wake_at = now + IDLE if system else math.inf
                if not self.ready.wait(IDLE) and not heap:
                    return False
                continue
            due, _, lease = heap[0]
            if due < lease._next_renew:  # renewed by hand meanwhile: its next renewal moved later
                lease._entry = [lease._next_renew, next(_order), lease]
                heapq.heapreplace(heap, lease._entry)
                continue
            if due > now:
                self.wake_at = due if system else math.inf
                self.ready.wait(due - now if system else min(due - now, FAKE_CLOCK_POLL))
                continue
            heapq.heappop(heap)
            lease._entry = None
            self.current = lease
            return True

    def _push(self, lease: Any) -> None:
        """Add *lease* at its next renewal; wake the thread only if it would otherwise look too late."""
        entry: Entry = [lease._next_renew, next(_order), lease]
        lease._entry = entry
        heapq.heappush(self.heap, entry)
        if self.heap[0] is entry and (entry[0] < self.wake_at or self.wake_clock is not _clock.current()):
            self.ready.notify()


def schedule(lease: Any, store: Any) -> None:
    """Renew *lease* in the background, at its ``_next_renew`` and after each renewal, until `cancel`."""
    with _lock:
        renewer = _renewers.get(id(store))
        if renewer is None:
            renewer = _renewers[id(store)] = _Renewer(store)
            renewer.thread.start()
        lease._renewer = renewer
        renewer._push(lease)


def cancel(lease: Any, timeout: float) -> None:
    """Stop renewing *lease*; wait (up to *timeout* real seconds) for a renewal of it that is running now."""
    renewer: _Renewer | None = lease._renewer
    if renewer is None:
        return
    if renewer.pid != _lock_registry.pid:  # a forked child: the parent's renewer and its lock are not ours
        lease._renewer = lease._entry = None
        return
    with _lock:
        lease._renewer = None
        entry, lease._entry = lease._entry, None
        if entry is not None:
            entry[2] = None
            renewer.cancelled += 1
            heap = renewer.heap
            if renewer.cancelled > _COMPACT and 2 * renewer.cancelled > len(heap):
                heap[:] = [e for e in heap if e[2] is not None]  # in place: the renewer thread holds this list
                heapq.heapify(heap)
                renewer.cancelled = 0
        if renewer.current is lease and renewer.thread is not threading.current_thread():
            renewer.ready.wait_for(lambda: renewer.current is not lease, timeout)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _renewers.clear()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
