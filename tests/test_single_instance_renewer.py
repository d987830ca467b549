"""The shared renewer of sync store leases: one thread per store, each lease on its own schedule, safe across fork."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import reliable
from reliable import _lease_renewer
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, installed
from test_single_instance_support import REAL_TIMEOUT, Events, eventually

pytest_plugins = ["test_single_instance_support"]
"""Fixtures: events (every single_instance event)."""

RENEWER = "reliable-lease-renewer"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with installed(FakeClock()) as fake:
        yield fake


def renewer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == RENEWER}


def renewed(events: Events, name: str) -> int:
    return len([e for e in events.named("renewed") if e.attributes["reliable.operation"] == name])


def caught_up(clock: FakeClock, *leases: Any) -> None:
    """Wait (real time, bounded) until every lease's next renewal lies in the future of the clock."""
    eventually(lambda: all(lease._next_renew > clock.monotonic() for lease in leases))


def test_leases_on_one_store_share_one_thread_and_keep_their_own_schedules(clock: FakeClock, events: Events) -> None:
    """Two leases on one store start one renewer thread; a ttl=3 lease renews every 1 s and a ttl=6 one every 2 s."""
    store = MemoryStore()
    before = renewer_threads()
    short = reliable.single_instance("short", store=store, ttl=3).acquire()
    long = reliable.single_instance("long", store=store, ttl=6).acquire()
    started = renewer_threads() - before

    for _ in range(6):
        clock.advance(1.05)
        caught_up(clock, short, long)
    counts = (renewed(events, "short"), renewed(events, "long"))
    short.release()
    long.release()

    assert 1 == len(started)
    assert (6, 3) == counts
    assert (False, False) == (short.lost, long.lost)


def test_leases_on_two_stores_have_two_threads(clock: FakeClock) -> None:
    """Each store has its own renewer, so a store that hangs delays only its own leases' renewals."""
    before = renewer_threads()
    first = reliable.single_instance("job", store=MemoryStore(), ttl=30).acquire()
    second = reliable.single_instance("job", store=MemoryStore(), ttl=30).acquire()
    started = renewer_threads() - before
    first.release()
    second.release()

    assert 2 == len(started)


def test_a_released_lease_is_not_renewed_and_an_idle_renewer_ends(
    clock: FakeClock, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After release the lease is never renewed again; with no lease left, the thread ends after IDLE seconds."""
    monkeypatch.setattr(_lease_renewer, "IDLE", 0.01)
    store = MemoryStore()
    before = renewer_threads()
    lease = reliable.single_instance("job", store=store, ttl=3).acquire()
    (thread,) = renewer_threads() - before
    lease.release()
    clock.advance(10)
    thread.join(REAL_TIMEOUT)

    assert not thread.is_alive()
    assert 0 == renewed(events, "job")
    assert id(store) not in _lease_renewer._renewers


def test_many_released_leases_do_not_pile_up(clock: FakeClock) -> None:
    """Released leases leave no entries behind: the heap is compacted once cancelled entries are most of it."""
    store = MemoryStore()
    lock = reliable.single_instance("job", store=store, ttl=30)
    keep = reliable.single_instance("kept", store=store, ttl=30).acquire()
    for _ in range(500):
        with lock:
            pass

    renewer = _lease_renewer._renewers[id(store)]
    assert len(renewer.heap) <= 2 * _lease_renewer._COMPACT + 2
    keep.release()


def test_a_lease_renewed_by_hand_is_renewed_later_in_the_background(clock: FakeClock, events: Events) -> None:
    """renew() by hand moves the next background renewal a full period later, not at the old time."""
    lease = reliable.single_instance("job", store=MemoryStore(), ttl=3).acquire()
    clock.advance(0.9)
    lease.renew()
    clock.advance(0.2)  # 1.1 s after acquiring: the old due time has passed, the new one (1.9 s) has not
    eventually(lambda: lease._entry is not None and lease._entry[0] > clock.monotonic())  # the renewer looked
    by_hand = renewed(events, "job")
    clock.advance(0.9)
    caught_up(clock, lease)
    lease.release()

    assert (1, 2) == (by_hand, renewed(events, "job"))


class BlockingRenewal:
    """A store whose compare-and-set (a renewal) waits until the test lets it go."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.entered = threading.Event()
        self.go = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def compare_and_set(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.go.wait(REAL_TIMEOUT)
        return self._store.compare_and_set(*args, **kwargs)


def test_release_waits_for_the_renewal_running_now(clock: FakeClock, events: Events) -> None:
    """A release that comes while its lease is being renewed waits for that renewal, then deletes the lease: no
    race between the two writes, no false 'lost'."""
    store = BlockingRenewal(MemoryStore())
    lease = reliable.single_instance("job", store=store, ttl=3).acquire()
    assert isinstance(lease, reliable.Lease)
    clock.advance(1.1)
    assert store.entered.wait(REAL_TIMEOUT)
    releasing = threading.Thread(target=lease.release)
    releasing.start()
    releasing.join(0.02)
    waited = releasing.is_alive()
    store.go.set()
    releasing.join(REAL_TIMEOUT)

    assert (True, True, None) == (waited, lease.released, store.get("lock:job:0"))
    assert [] == events.named("lost")


def test_fork_child_has_no_renewer_of_its_parent(clock: FakeClock) -> None:
    """A child forked while the parent's renewer held its lock neither deadlocks nor renews the parent's lease:
    releasing the inherited lease deletes nothing, and a lease of its own gets a fresh renewer."""
    store = MemoryStore()
    parents = reliable.single_instance("parent", store=store, ttl=3).acquire()
    assert isinstance(parents, reliable.Lease)
    read, write = os.pipe()
    with _lease_renewer._lock:  # as if the renewer thread held it at the moment of fork
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            try:
                parents.release()
                own = reliable.single_instance("child", store=store, ttl=3).acquire()
                clock.advance(1.1)
                caught_up(clock, own)
                report = f"{store.get('lock:parent:0') is not None} {own._renewer is not None} {renewer_threads()!r}"
                own.release()
            except BaseException as exc:
                report = f"error {exc!r}"
            os.write(write, report.encode())
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], REAL_TIMEOUT)
    if not ready:  # pragma: no cover - the failure this test exists for
        os.kill(pid, signal.SIGKILL)
    report = os.read(read, 4096).decode() if ready else "deadlocked"
    os.close(read)
    os.waitpid(pid, 0)
    parents.release()

    assert report.startswith("True True {<Thread(reliable-lease-renewer"), report


class FailingRenewals:
    """A store whose compare-and-set (a renewal) is unreachable while ``failing`` is true."""

    failing = False

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def acompare_and_set(self, *args: Any, **kwargs: Any) -> Any:
        if self.failing:
            raise reliable.StoreUnavailableError("store down for the test", address="test://")
        return await self._store.acompare_and_set(*args, **kwargs)


def test_async_leases_renew_from_loop_timers_and_retry_failures(clock: FakeClock, events: Events) -> None:
    """An async lease renews on the library clock from timers of its loop (no thread): a failed renewal is retried
    sooner, a later one succeeds, and after release nothing of it is left scheduled on the loop."""
    store = FailingRenewals(MemoryStore())

    async def until(count: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REAL_TIMEOUT
        while not count():
            assert loop.time() < deadline
            await asyncio.sleep(0.001)

    async def main() -> tuple[Any, list[str], int]:
        before = renewer_threads()
        async with reliable.single_instance("job", store=store, ttl=3) as lease:
            store.failing = True
            clock.advance(1.1)
            await until(lambda: events.named("renew_failed"))
            store.failing = False
            clock.advance(0.3)
            await until(lambda: renewed(events, "job"))
        left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return lease, left, len(renewer_threads() - before)

    lease, left, threads = asyncio.run(main())

    assert ([], 0) == (left, threads)
    assert (1, 1) == (len(events.named("renew_failed")), renewed(events, "job"))
    assert (True, False) == (lease.released, lease.lost)


def test_async_release_waits_for_the_renewal_running_now(clock: FakeClock, events: Events) -> None:
    """arelease while the lease's renewal task is in the store waits for it, then deletes the lease."""
    store = MemoryStore()

    class Paused:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        async def acompare_and_set(self, *args: Any, **kwargs: Any) -> Any:
            entered.set()
            await go.wait()
            return await store.acompare_and_set(*args, **kwargs)

    async def main() -> tuple[bool, Any]:
        lease = await reliable.single_instance("job", store=Paused(), ttl=3).aacquire()
        assert isinstance(lease, reliable.Lease)
        clock.advance(1.1)
        await asyncio.wait_for(entered.wait(), REAL_TIMEOUT)
        releasing = asyncio.create_task(lease.arelease())
        await asyncio.sleep(0.01)
        waited = not releasing.done()
        go.set()
        await releasing
        return waited, lease

    entered, go = asyncio.Event(), asyncio.Event()
    waited, lease = asyncio.run(main())

    assert (True, True, None) == (waited, lease.released, store.get("lock:job:0"))
    assert ([], 1) == (events.named("lost"), renewed(events, "job"))
