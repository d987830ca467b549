"""Which lock slots this process holds, by which thread or task, and a signal to wait on for their release.

``flock`` locks belong to an open file description, and this process keeps one open
per lock file, so the operating system cannot tell two threads of one process apart;
a store lease cannot either. Every acquisition therefore reserves its slot here first:
a second holder in the same process is seen at once (re-entrant use is refused, another
thread or task conflicts as another process would), and waiters in this process wait
on `wait` / `await_release` (an in-process signal) instead of polling through the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Hashable

__all__ = [
    "BUSY",
    "MINE",
    "TAKEN",
    "Entry",
    "Owner",
    "await_release",
    "current_owner",
    "entry",
    "free",
    "give_back",
    "holders",
    "take",
    "wait",
]

Owner = tuple[int, object]
"""``(thread id, asyncio task or None)``: who in this process holds a slot."""

Key = Hashable


class Entry:
    """The slots of one lock held in this process, and who waits for them."""

    __slots__ = ("futures", "slots", "waiters")

    def __init__(self) -> None:
        self.slots: dict[int, Owner] = {}
        self.waiters = 0
        self.futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []


TAKEN, BUSY, MINE = 0, 1, 2
"""What `take` did: reserved the slot; found it held by another thread or task; found *owner* holding the lock."""

pid = os.getpid()
"""This process's id, kept current across fork (cheaper than calling `os.getpid` on the hot path)."""
_lock = threading.Lock()
_released = threading.Condition(_lock)
_entries: dict[Key, Entry] = {}
_get_running_loop = asyncio.events._get_running_loop
_get_ident = threading.get_ident


def current_owner() -> Owner:
    """The thread, and the asyncio task when one is running in it, asking for a lock."""
    loop = _get_running_loop()
    return (_get_ident(), None if loop is None else asyncio.current_task(loop))


def entry(key: Key) -> Entry:
    """The slots of *key* in this process, created on first use.

    Entries are only ever dropped at fork, so a caller may keep the one it got for as long
    as `pid` has not changed (the file backend does, to skip this lookup on every acquisition).
    """
    found = _entries.get(key)
    if found is None:
        found = _entries.setdefault(key, Entry())
    return found


def take(key: Key, slot: int, owner: Owner) -> int:
    """Reserve *slot* of *key* for *owner*: `TAKEN`, `BUSY` (another thread or task has it) or `MINE`.

    `MINE` means *owner* already holds a slot of *key*: re-entrant use, refused whatever the slot.
    No lock is needed: ``setdefault`` claims the slot atomically (the GIL makes it one step),
    and only *owner* itself can add *owner* to the slots, so the re-entry check cannot race.
    """
    slots = entry(key).slots
    if slots and owner in list(slots.values()):
        return MINE
    return TAKEN if slots.setdefault(slot, owner) is owner else BUSY


def give_back(key: Key, slot: int) -> None:
    """Free *slot* of *key* in this process and wake whoever waits for it."""
    found = _entries.get(key)
    if found is not None:
        free(found, slot)


def free(found: Entry, slot: int) -> None:
    """`give_back` for a caller that kept the `entry`."""
    found.slots.pop(slot, None)
    if not (found.waiters or found.futures):
        return  # a waiter that registers from now on sees the free slot (`wait` checks under the lock)
    with _lock:
        _released.notify_all()
        futures, found.futures = found.futures, []
    for loop, future in futures:
        with contextlib.suppress(RuntimeError):  # that loop is closed; its waiter is gone
            loop.call_soon_threadsafe(_resolve, future)


def holders(key: Key) -> dict[int, Owner]:
    """Slot → owner for the slots of *key* held in this process."""
    found = _entries.get(key)
    return {} if found is None else dict(found.slots)


def wait(key: Key, timeout: float, limit: int) -> bool:
    """Block up to *timeout* real seconds for one of the *limit* slots of *key* to be free; True if one is."""
    found = entry(key)
    with _lock:
        found.waiters += 1
        try:
            if len(found.slots) < limit:
                return True
            return _released.wait(timeout)
        finally:
            found.waiters -= 1


async def await_release(key: Key, timeout: float, limit: int) -> bool:
    """Await up to *timeout* real seconds for one of the *limit* slots of *key* to be free; True if one is."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    found = entry(key)
    with _lock:
        found.futures.append((loop, future))  # first register, then look: a release in between sees us
        if len(found.slots) < limit:
            found.futures.remove((loop, future))
            return True
    try:
        await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        with _lock:
            found.futures = [f for f in found.futures if f[1] is not future]
        return False
    return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _after_fork_in_child() -> None:
    """A forked child holds none of its parent's locks: start from an empty registry."""
    global _lock, _released, pid
    pid = os.getpid()
    _lock = threading.Lock()
    _released = threading.Condition(_lock)
    _entries.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
