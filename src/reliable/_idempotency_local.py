"""In-process coordination of `reliable.idempotent`: one flight per key, and waiting for it.

When several threads or tasks of one process call with the same key at once, only the first
(the *leader*) talks to the store; the others wait on an in-process signal and then read the
leader's outcome. They never poll the store or sleep on the library clock: under a fake
clock, a poller's sleep would move time past the leader's own lease and run the function twice.

Flights are keyed by ``(Identity(store), store key)`` and removed when they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from ._internal._identity import Identity

__all__ = [
    "Flight",
    "Pending",
    "WouldDeadlock",
    "await_flight",
    "drop_pending",
    "finish",
    "forget_settled",
    "join",
    "keep_pending",
    "pending",
    "settled",
    "wait_flight",
]

_MISSING: Any = object()


class Flight:
    """One key being claimed, run or replayed by a leader in this process."""

    __slots__ = ("data", "done", "live", "task", "thread", "waiters")

    def __init__(self) -> None:
        self.done = False
        self.data: dict[str, Any] | None = None
        """The COMPLETED record the leader ended with, or None: waiters must try again themselves."""
        self.live: Any = _MISSING
        """The leader's own result object, when it could not be stored."""
        self.thread = _get_ident()
        loop = _get_running_loop()  # _current_task(), inlined: every call makes a flight
        self.task: object = None if loop is None else _task_of(loop)
        self.waiters: list[Callable[[], None]] = []

    @property
    def has_live(self) -> bool:
        return self.live is not _MISSING

    def is_own(self) -> bool:
        """Whether the caller is the leader itself (waiting would deadlock)."""
        task = _current_task()
        if task is not None:
            return task is self.task
        return self.thread == threading.get_ident()


_lock = threading.Lock()
_get_ident = threading.get_ident
_get_running_loop = asyncio._get_running_loop
_task_of = asyncio.current_task
_flights: dict[tuple[Identity, str], Flight] = {}
_SETTLED_MAX = 4096
_settled: dict[tuple[int, str], Callable[[], object]] = {}
"""Store keys this process saw COMPLETED lately, by ``(id(store), key)``, each with a weak reference to its store.

A hint only: a call with one of them reads the record first, so its replay needs no flight and no
claim; if the record is gone or not completed, the call claims as usual (one read more)."""


def settled(store: object, key: str) -> bool:
    """Whether *key* of *store* was COMPLETED when this process last saw it (read its record before claiming)."""
    ref = _settled.get((id(store), key))
    return ref is not None and ref() is store


def forget_settled(store: object, key: str) -> None:
    """Stop treating *key* as settled: its record was gone or not completed when read."""
    _settled.pop((id(store), key), None)


def _remember_settled(store: object, key: str) -> None:
    try:
        ref = weakref.ref(store)
    except TypeError:  # a store without weak references is never remembered: its calls just claim
        return
    if len(_settled) >= _SETTLED_MAX:
        _settled.clear()
    _settled[(id(store), key)] = ref


class Pending(NamedTuple):
    """A completion this process could not store: the function ran, the store was unavailable."""

    value: bytes
    version: int
    data: dict[str, Any]


_PENDING_MAX = 1024
_pending: dict[tuple[Identity, str], Pending] = {}
"""Completions waiting for their store to come back, written by the next call of their key in this process."""


def keep_pending(store: object, key: str, completion: Pending) -> bool:
    """Remember *completion* of *key*; False (not kept) when too many are pending already."""
    ident = (Identity(store), key)
    with _lock:
        if len(_pending) >= _PENDING_MAX and ident not in _pending:
            return False
        _pending[ident] = completion
    return True


def pending(store: object, key: str) -> Pending | None:
    """The completion of *key* this process still has to store, if any."""
    if not _pending:  # the hot path: nothing pending anywhere
        return None
    return _pending.get((Identity(store), key))


def drop_pending(store: object, key: str, completion: Pending) -> None:
    """Forget *completion* of *key* (stored, or superseded), unless another one replaced it meanwhile."""
    ident = (Identity(store), key)
    with _lock:
        if _pending.get(ident) is completion:
            del _pending[ident]


def _current_task() -> object:
    loop = asyncio._get_running_loop()  # no exception when there is none, unlike current_task()
    return None if loop is None else asyncio.current_task(loop)


def join(store: object, key: str) -> tuple[Flight, bool]:
    """The flight of *key* in *store*, and whether the caller leads it (it did not exist)."""
    made = Flight()
    found = _flights.setdefault((Identity(store), key), made)  # atomic: no lock needed to elect the leader
    return found, found is made


def finish(store: object, key: str, flight: Flight, data: dict[str, Any] | None = None, live: Any = _MISSING) -> None:
    """End *flight* with the COMPLETED record *data* (None: waiters try again) and wake its waiters."""
    ident = (Identity(store), key)
    with _lock:
        if flight.done:
            return
        flight.done = True
        flight.data = data
        flight.live = live
        if _flights.get(ident) is flight:
            del _flights[ident]
        if data is not None:
            _remember_settled(store, key)
        waiters, flight.waiters = flight.waiters, []
    for wake in waiters:
        wake()


class WouldDeadlock(Exception):
    """A blocking wait for a flight led from this very thread (an async leader on this thread's loop)."""


def wait_flight(flight: Flight) -> None:
    """Block this thread until *flight* finishes.

    Raises:
        WouldDeadlock: the leader runs on this thread (a task of the loop this call would block).
    """
    if flight.thread == threading.get_ident():
        raise WouldDeadlock
    with _lock:
        if flight.done:
            return
        event = threading.Event()
        flight.waiters.append(event.set)
    event.wait()


async def await_flight(flight: Flight) -> None:
    """Suspend this task until *flight* finishes."""
    loop = asyncio.get_running_loop()
    with _lock:
        if flight.done:
            return
        future: asyncio.Future[None] = loop.create_future()
        flight.waiters.append(lambda: _wake(loop, future))
    await future


def _wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _resolve(future)
        return
    with contextlib.suppress(RuntimeError):  # the waiter's loop is closed; nobody is waiting any more
        loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
