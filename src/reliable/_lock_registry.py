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
from dataclasses import dataclass, field

__all__ = ["Owner", "await_release", "current_owner", "give_back", "holders", "owned_by", "take", "wait"]

Owner = tuple[int, object]
"""``(thread id, asyncio task or None)``: who in this process holds a slot."""

Key = Hashable


@dataclass
class _Entry:
    slots: dict[int, Owner] = field(default_factory=dict)
    waiters: int = 0
    futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)


_lock = threading.Lock()
_released = threading.Condition(_lock)
_entries: dict[Key, _Entry] = {}
_get_running_loop = asyncio.events._get_running_loop


def current_owner() -> Owner:
    """The thread, and the asyncio task when one is running in it, asking for a lock."""
    loop = _get_running_loop()
    task = asyncio.current_task(loop) if loop is not None else None
    return (threading.get_ident(), task)


def owned_by(key: Key, owner: Owner) -> int | None:
    """The slot of *key* that *owner* holds in this process, or None."""
    entry = _entries.get(key)
    if entry is None:
        return None
    for slot, holder in list(entry.slots.items()):
        if holder == owner:
            return slot
    return None


def take(key: Key, slot: int, owner: Owner) -> bool:
    """Reserve *slot* of *key* for *owner*; False if another holder in this process has it."""
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            entry = _entries[key] = _Entry()
        elif slot in entry.slots:
            return False
        entry.slots[slot] = owner
        return True


def give_back(key: Key, slot: int) -> None:
    """Free *slot* of *key* in this process and wake whoever waits for it."""
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            return
        entry.slots.pop(slot, None)
        if entry.waiters:
            _released.notify_all()
        futures, entry.futures = entry.futures, []
        if not entry.slots and not entry.waiters and not futures:
            del _entries[key]
    for loop, future in futures:
        with contextlib.suppress(RuntimeError):  # that loop is closed; its waiter is gone
            loop.call_soon_threadsafe(_resolve, future)


def holders(key: Key) -> dict[int, Owner]:
    """Slot → owner for the slots of *key* held in this process."""
    entry = _entries.get(key)
    return {} if entry is None else dict(entry.slots)


def wait(key: Key, timeout: float) -> bool:
    """Block up to *timeout* real seconds for a slot of *key* to be given back; True if one was."""
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            return True
        entry.waiters += 1
        try:
            return _released.wait(timeout)
        finally:
            entry.waiters -= 1
            if not entry.slots and not entry.waiters and not entry.futures:
                _entries.pop(key, None)


async def await_release(key: Key, timeout: float) -> bool:
    """Await up to *timeout* real seconds for a slot of *key* to be given back; True if one was."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            return True
        entry.futures.append((loop, future))
    try:
        await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        with _lock:
            entry = _entries.get(key)
            if entry is not None:
                entry.futures = [f for f in entry.futures if f[1] is not future]
                if not entry.slots and not entry.waiters and not entry.futures:
                    del _entries[key]
        return False
    return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _after_fork_in_child() -> None:
    """A forked child holds none of its parent's locks: start from an empty registry."""
    global _lock, _released
    _lock = threading.Lock()
    _released = threading.Condition(_lock)
    _entries.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
