"""The reliable_clock fixture when several threads or tasks sleep at once, and why waiters never sleep on it.

The rules (documented in docs/how-to/testing-against-faults.md):

- tasks that sleep together wake in deadline order, each at its own deadline, so a task
  renewing a lease every 5 s keeps it while another task polls every second;
- a thread's sleep moves the clock for everyone at once, so a sleeping thread can expire a
  record nobody renews;
- therefore the primitives wait for a holder in the same process on an in-process signal,
  never by sleeping on the clock: a waiting duplicate cannot expire the holder's lease.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import reliable
from reliable.testing import FakeClock, Faults, FaultyStore


def test_tasks_sleeping_together_move_to_the_latest_deadline(reliable_clock: FakeClock) -> None:
    """Three tasks sleeping 1, 2 and 3 s at once move the clock 3 s, not 6 s."""

    async def main() -> None:
        await asyncio.gather(reliable_clock.asleep(1), reliable_clock.asleep(2), reliable_clock.asleep(3))

    asyncio.run(main())

    assert 3.0 == reliable_clock.advanced


def test_renewing_task_keeps_its_lease_while_another_task_polls(
    reliable_clock: FakeClock, reliable_store: FaultyStore
) -> None:
    """A holder renewing a 15 s lease every 5 s keeps it for 60 s while a poller sleeps 1 s at a time."""
    reliable_store.set("lease", "holder", ttl=15)
    seen: list[Any] = []

    async def holder() -> None:
        for _ in range(12):
            await reliable_clock.asleep(5)
            record = reliable_store.get("lease")
            assert record is not None
            reliable_store.compare_and_set("lease", "holder", version=record.version, ttl=15)

    async def poller() -> None:
        for _ in range(59):
            await reliable_clock.asleep(1)
            record = reliable_store.get("lease")
            seen.append(None if record is None else record.value)

    async def main() -> None:
        await asyncio.gather(holder(), poller())

    asyncio.run(main())

    assert ["holder"] * 59 == seen
    assert 60.0 == reliable_clock.advanced


def test_a_threads_sleep_moves_time_for_everyone(reliable_clock: FakeClock, reliable_store: FaultyStore) -> None:
    """A thread that sleeps 60 s moves the clock at once, and a 30 s record nobody renewed expires under everyone."""
    reliable_store.set("claim", "holder", ttl=30)

    thread = threading.Thread(target=reliable_clock.sleep, args=(60,))
    thread.start()
    thread.join(5)

    assert (60.0, None) == (reliable_clock.advanced, reliable_store.get("claim"))


EFFECTS: list[int] = []


def work(n: int) -> int:
    """The side effect of `job`; faulted by the test."""
    EFFECTS.append(n)
    return n


@reliable.idempotent(key=lambda n: f"job:{n}", lease="30s", name="signal-test")
def job(n: int) -> int:
    return work(n)


def test_idempotent_duplicates_wait_on_a_signal(
    reliable_clock: FakeClock, reliable_store: FaultyStore, reliable_faults: Faults
) -> None:
    """Duplicates of a call in progress wait for it without sleeping: the clock moves only by the holder's 10 s."""
    EFFECTS.clear()
    reliable_faults.latency(f"{__name__}:work", 10)
    results: list[int] = []

    threads = [threading.Thread(target=lambda: results.append(job(1))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert ([1, 1, 1, 1], [1]) == (results, EFFECTS)
    assert 10.0 == reliable_clock.advanced


def test_single_instance_waiter_does_not_expire_the_holders_lease(
    reliable_clock: FakeClock, reliable_store: FaultyStore
) -> None:
    """A waiter for a lock held in the same process waits on a signal: time stands still, the holder keeps its lease."""
    held, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def holder() -> None:
        with reliable.single_instance("report", store=reliable_store, ttl=30) as lease:
            held.set()
            release.wait(5)
            assert isinstance(lease, reliable.Lease)
            lease.check()
            outcome["holder"] = lease.token

    def waiter() -> None:
        with reliable.single_instance("report", store=reliable_store, ttl=30, on_conflict="wait", timeout=120) as lease:
            assert isinstance(lease, reliable.Lease)
            outcome["waiter"] = lease.token

    first = threading.Thread(target=holder)
    first.start()
    held.wait(5)
    second = threading.Thread(target=waiter)
    second.start()
    second.join(0.02)  # the waiter is waiting now (or soon); either way it must not move time
    advanced_while_waiting = reliable_clock.advanced
    release.set()
    first.join(5)
    second.join(5)

    assert 0.0 == advanced_while_waiting
    assert outcome["waiter"] > outcome["holder"]
