"""The library clock: every primitive reads time and sleeps through it.

No primitive calls `time.time`, `time.monotonic`, `time.sleep` or `asyncio.sleep`
itself; it calls `current()` and uses the clock it returns. Tests install a
`reliable.testing.FakeClock` (the ``reliable_clock`` fixture does), so a retry
schedule of minutes or a lease of hours runs in microseconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "current", "installed", "install"]


@runtime_checkable
class Clock(Protocol):
    """What the primitives need of time.

    ``monotonic()`` measures durations and deadlines; ``time()`` is wall-clock
    seconds since the epoch (for records other processes read); ``sleep`` and
    ``asleep`` wait.
    """

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time`, `time.sleep`, `asyncio.sleep`."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM = SystemClock()
_lock = threading.Lock()
_current: Clock = SYSTEM


def current() -> Clock:
    """Return the clock the primitives use now."""
    return _current


def install(clock: Clock) -> Clock:
    """Make *clock* the library clock and return the one it replaces."""
    global _current
    # Duck-typed with getattr, not isinstance(clock, Clock): since Python 3.12 runtime-checkable
    # protocols ignore attributes a wrapper serves through __getattr__.
    if not all(callable(getattr(clock, method, None)) for method in ("monotonic", "time", "sleep", "asleep")):
        from .._errors import ConfigError

        msg = f"clock={clock!r} is not a Clock; pass an object with monotonic(), time(), sleep() and asleep()"
        raise ConfigError(msg, clock=clock)
    with _lock:
        previous, _current = _current, clock
    return previous


@contextmanager
def installed(clock: Clock) -> Iterator[Clock]:
    """Use *clock* as the library clock inside the ``with`` block, then restore the previous one."""
    previous = install(clock)
    try:
        yield clock
    finally:
        install(previous)


def skew(clock: Clock) -> float:
    """Seconds by which *clock*'s wall time is ahead of the real one (0 for the system clock).

    Stores whose time comes from a server add it to the server's time, so a fake
    clock moved forward in a test moves their TTLs and leases too.
    """
    if clock is SYSTEM or isinstance(clock, SystemClock):
        return 0.0
    return clock.time() - time.time()
