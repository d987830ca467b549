"""The library clock: system clock, swapping, and the FakeClock's rules for sleepers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from reliable import ConfigError
from reliable._internal import _clock
from reliable.testing import FakeClock, installed


def test_system_clock_reads_real_time() -> None:
    """SystemClock's time() and monotonic() are the real ones."""
    clock = _clock.SystemClock()

    assert abs(time.time() - clock.time()) < 1.0
    assert abs(time.monotonic() - clock.monotonic()) < 1.0


def test_system_clock_zero_sleep_returns() -> None:
    """Sleeping 0 or less on the system clock returns at once (it is guarded against long sleeps in tests)."""
    _clock.SystemClock().sleep(0)
    _clock.SystemClock().sleep(-1)
    asyncio.run(_clock.SystemClock().asleep(0))


def test_installed_swaps_and_restores() -> None:
    """installed() makes a clock current inside the block and restores the previous one after."""
    before = _clock.current()
    fake = FakeClock()

    with installed(fake):
        inside = _clock.current()

    assert (fake, before) == (inside, _clock.current())


def test_install_refuses_non_clocks() -> None:
    """Installing an object that is not a Clock raises ConfigError naming the methods needed."""
    with pytest.raises(ConfigError, match="monotonic"):
        _clock.install(object())  # type: ignore[arg-type]


def test_skew_is_zero_for_system_and_advance_for_fake() -> None:
    """skew() is 0 for the system clock and the distance a fake clock has moved ahead."""
    fake = FakeClock()
    fake.advance(120)

    assert 0.0 == _clock.skew(_clock.SYSTEM)
    assert 119 < _clock.skew(fake) < 121


def test_fake_clock_starts_at_real_time() -> None:
    """A FakeClock's wall time starts at the real current time unless told otherwise."""
    assert abs(time.time() - FakeClock().time()) < 1.0
    assert 5.0 == FakeClock(start=5).time()


def test_fake_sleep_advances_instantly() -> None:
    """sleep() moves time by the requested seconds and records the sleep; no real time passes."""
    clock = FakeClock(start=0)
    started = time.monotonic()

    clock.sleep(3600)
    asyncio.run(clock.asleep(60))

    assert (3660.0, [3600.0, 60.0]) == (clock.time(), clock.sleeps)
    assert time.monotonic() - started < 1.0


def test_negative_sleep_is_an_error() -> None:
    """A negative sleep is a bug in the caller, as with time.sleep."""
    clock = FakeClock()

    with pytest.raises(ValueError, match="non-negative"):
        clock.sleep(-1)
    with pytest.raises(ValueError, match="non-negative"):
        asyncio.run(clock.asleep(-1))


def test_concurrent_sleepers_do_not_add_up() -> None:
    """Threads that sleep at once move the clock to the latest deadline, not by the sum of their sleeps."""
    clock = FakeClock(start=0)
    barrier = threading.Barrier(4)

    def sleeper() -> None:
        barrier.wait()
        clock.sleep(5)

    threads = [threading.Thread(target=sleeper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert clock.time() <= 20.0
    assert clock.time() >= 5.0
    assert [5.0] * 4 == clock.sleeps


def test_concurrent_tasks_sleeping_move_to_latest_deadline() -> None:
    """Tasks gathered together, sleeping 1, 2 and 3 s, leave the clock at 3 s, as real time would."""
    clock = FakeClock(start=0)

    async def main() -> None:
        await asyncio.gather(clock.asleep(1), clock.asleep(2), clock.asleep(3))

    asyncio.run(main())

    assert 3.0 == clock.time()


def test_tasks_wake_in_deadline_order_at_their_deadlines() -> None:
    """Tasks sleeping together wake in deadline order, each seeing the clock at its own deadline."""
    clock = FakeClock(start=0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.asleep(seconds)
        woke.append((name, clock.time()))

    async def main() -> None:
        await asyncio.gather(sleeper("late", 3), sleeper("early", 1), sleeper("now", 0))

    asyncio.run(main())

    assert [("now", 0.0), ("early", 1.0), ("late", 3.0)] == woke


def test_manual_clock_blocks_until_advanced() -> None:
    """With auto_advance=False a sleeper waits until another thread advances past its deadline."""
    clock = FakeClock(start=0, auto_advance=False)
    woke = threading.Event()

    def sleeper() -> None:
        clock.sleep(10)
        woke.set()

    thread = threading.Thread(target=sleeper)
    thread.start()
    while not clock.sleeps:
        time.sleep(0.001)
    clock.advance(5)
    early = woke.wait(0.02)
    clock.advance(5)
    thread.join(5)

    assert (False, True) == (early, woke.is_set())


def test_manual_clock_async_sleeper_wakes_on_advance() -> None:
    """An async sleeper on a manual clock resumes when time is advanced past its deadline."""
    clock = FakeClock(start=0, auto_advance=False)

    async def main() -> float:
        task = asyncio.ensure_future(clock.asleep(30))
        await asyncio.sleep(0)
        clock.advance(31)
        await task
        return clock.time()

    assert 31.0 == asyncio.run(main())


def test_manual_clock_sleep_times_out_instead_of_hanging() -> None:
    """A manual sleep nobody ends raises RuntimeError after real_timeout instead of hanging the test."""
    clock = FakeClock(auto_advance=False, real_timeout=0.01)

    with pytest.raises(RuntimeError, match="nobody advanced"):
        clock.sleep(1)


def test_advance_backwards_is_ignored_and_advanced_reports_total() -> None:
    """advance() only moves forward; `advanced` reports the total distance moved."""
    clock = FakeClock(start=100)
    clock.advance("1m")
    clock._move_to(1.0)

    assert (160.0, 60.0) == (clock.time(), clock.advanced)
    assert "advanced=60.000s" in repr(clock)
