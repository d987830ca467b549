"""`FakeClock`: the library clock for tests, whose sleeps take no real time."""

from __future__ import annotations

import asyncio
import threading
import time as _time
from datetime import timedelta

from .._internal._durations import Duration, seconds

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that only moves when told to, or when someone sleeps on it.

    Install it with the ``reliable_clock`` fixture, or ``with reliable.testing.installed(clock):``.
    Its wall time starts at the real current time (or *start*), so records written
    under it look right to another process that reads the same store with a real
    clock; its monotonic time starts at an arbitrary 1,000 s.

    Sleeping, with ``auto_advance=True`` (the default), returns at once after moving
    time forward to the sleeper's deadline. Concurrent sleepers do not add up:
    time moves to the *latest deadline* among them, never by the sum, so two
    threads that each sleep 5 s together move the clock 5 s, like real time.
    A sleeper's deadline still moves the clock for everyone, which is why
    `reliable`'s primitives never sleep to wait for another caller in the same
    process (they wait on an in-process signal): one waiter's poll can therefore
    not expire another holder's lease behind its back.

    With ``auto_advance=False``, a sleeper blocks until other code calls
    `advance` past its deadline, as in trio's ``MockClock`` without autojump:
    use it to interleave threads or tasks step by step. A sleep that nobody ends
    within *real_timeout* real seconds raises `RuntimeError` instead of hanging.

    >>> clock = FakeClock(start=0)
    >>> clock.sleep(30)
    >>> clock.time(), clock.sleeps
    (30.0, [30.0])

    .. versionadded:: 0.1.0
    """

    def __init__(self, start: float | None = None, *, auto_advance: bool = True, real_timeout: float = 10.0) -> None:
        self._wall0 = _time.time() if start is None else float(start)
        self._offset = 0.0
        self._cond = threading.Condition()
        self._waiters: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waking = 0  # async sleepers whose deadline came but who have not resumed yet
        self.auto_advance = auto_advance
        self.real_timeout = real_timeout
        self.sleeps: list[float] = []
        """Every requested sleep, in seconds, in order."""

    def __repr__(self) -> str:
        return f"FakeClock(time={self.time():.3f}, advanced={self._offset:.3f}s)"

    @property
    def advanced(self) -> float:
        """Seconds this clock has moved since it was created."""
        return self._offset

    def monotonic(self) -> float:
        return 1_000.0 + self._offset

    def time(self) -> float:
        return self._wall0 + self._offset

    def advance(self, duration: Duration | timedelta) -> None:
        """Move time forward by *duration* and wake the sleepers whose deadline has come."""
        self._move_to(self._offset + seconds(duration, "duration"))

    def _move_to(self, offset: float) -> None:
        with self._cond:
            if offset > self._offset:
                self._offset = offset
                self._cond.notify_all()
            now = self._offset
            due = [w for w in self._waiters if w[0] <= now]
            self._waiters = [w for w in self._waiters if w[0] > now]
            self._waking += len(due)
        for _, loop, future in due:
            loop.call_soon_threadsafe(_resolve, future)

    def sleep(self, seconds_: float) -> None:
        """Move time to now + *seconds_* (auto-advance), or block until someone else does."""
        if seconds_ < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds_!r}")
        cond = self._cond
        if self.auto_advance:
            with cond:
                self.sleeps.append(float(seconds_))
                deadline = self._offset + seconds_
                if not self._waiters:  # the common case: nobody to wake, one lock round
                    if deadline > self._offset:
                        self._offset = deadline
                    return
            self._move_to(deadline)
            return
        with cond:
            self.sleeps.append(float(seconds_))
            deadline = self._offset + seconds_
            if not cond.wait_for(lambda: self._offset >= deadline, timeout=self.real_timeout):
                msg = (
                    f"FakeClock: nobody advanced the clock to the end of a {seconds_}s sleep "
                    f"within {self.real_timeout}s; call clock.advance() from another thread"
                )
                raise RuntimeError(msg)

    async def asleep(self, seconds_: float) -> None:
        """The async twin of `sleep`.

        With auto-advance, tasks that start sleeping in the same turn of the event loop
        wake in deadline order and move the clock to each deadline in turn (never by the
        sum): the sleeper registers, yields once so the others can register too, then
        time jumps to the earliest pending deadline, again and again, until its own.
        """
        if seconds_ < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds_!r}")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            self.sleeps.append(float(seconds_))
            deadline = self._offset + seconds_
            self._waiters.append((deadline, loop, future))
        if not self.auto_advance:
            await asyncio.wait_for(future, timeout=self.real_timeout)
        else:
            await asyncio.sleep(0)
            while not future.done():
                with self._cond:
                    # Jump only once every sleeper woken by the last jump has resumed,
                    # so each one sees the clock at its own deadline.
                    pending = [w[0] for w in self._waiters if w[1] is loop] if self._waking == 0 else []
                if pending:
                    self._move_to(min(pending))
                await asyncio.sleep(0)
        with self._cond:
            self._waking -= 1


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
