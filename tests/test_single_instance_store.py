"""`reliable.single_instance` with a store: leases, tokens, renewal, loss, conditional release (every backend)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import reliable
from reliable import _lock_registry
from reliable._internal import _telemetry
from reliable._lease_core import holder_from_record
from reliable.stores import Store
from reliable.testing import FakeClock, installed
from test_single_instance_support import Events, Mode

pytest_plugins = ["test_single_instance_support"]
"""Fixtures: mode (the four forms), events (every single_instance event)."""


class OtherProcess:
    """The same store seen through another object: this process treats its leases as another process's."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Flaky(OtherProcess):
    """A store whose compare_and_set fails (store unreachable) while ``failing`` is true."""

    failing = False

    def compare_and_set(self, *args: Any, **kwargs: Any) -> Any:
        if self.failing:
            raise reliable.StoreUnavailableError("store down for the test", address="test://")
        return self._store.compare_and_set(*args, **kwargs)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with installed(FakeClock()) as fake:
        yield fake


def dead_holder(store: Store, name: str = "job", *, ttl: float = 30.0, slot: int = 0) -> int:
    """A lease another process took and will never renew (it was killed); returns its token."""
    value = {"name": name, "owner": "dead", "pid": 999999, "host": "elsewhere", "since": store.now()}
    record, created = store.put_if_absent(f"lock:{name}:{slot}", {**value, "slot": slot}, ttl=ttl)
    assert created
    return record.version


def test_lease_record_holds_the_holder_and_token(store: Store, clock: FakeClock) -> None:
    """The lease is a record lock:<name>:<slot> with the holder metadata and the TTL, whose version is the token
    (what `reliable status` and conflict messages show); release deletes it."""
    with reliable.single_instance("job", store=store, ttl=30) as lease:
        record = store.get("lock:job:0")

    assert record is not None
    expected = {"name": "job", "pid": lease.pid, "host": lease.host, "slot": 0}
    assert expected == {k: record.value[k] for k in expected}
    assert lease.token == record.version == holder_from_record("job", record).token
    assert ("store", "lock:job:0") == (lease.backend, lease.where)
    assert record.expires_at == pytest.approx(store.now() + 30, abs=1)
    assert store.get("lock:job:0") is None


def test_tokens_grow_with_every_holder(store: Store, clock: FakeClock) -> None:
    """Each later holder gets a larger token (the version of its claim), whatever was written in between."""
    tokens = []
    for i in range(3):
        with reliable.single_instance("job", store=store) as lease:
            tokens.append(lease.token)
            lease.renew()
        store.set(f"other:{i}", i)

    assert sorted(set(tokens)) == tokens
    assert tokens[0] > 0


class Counting(OtherProcess):
    """Records the name of every store method called (``aget`` for the async twin of ``get``)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


def test_acquire_is_one_store_call_and_release_another(store: Store, clock: FakeClock, mode: Mode) -> None:
    """A free lock costs one put_if_absent to acquire (the token is its record's version) and one delete to
    release, in every form; nothing else touches the store."""
    counting = Counting(store)
    prefix = "a" if mode.is_async else ""

    lease = mode.run(reliable.single_instance("job", store=counting, ttl=30), lambda lease: lease)

    assert [prefix + "put_if_absent", prefix + "delete"] == counting.calls
    assert (True, False) == (lease.released, lease.lost)


def test_tokens_grow_across_slots(store: Store, clock: FakeClock) -> None:
    """limit=2: whichever slot a later holder takes, its token is larger than every earlier holder's."""
    lock = reliable.single_instance("job", store=OtherProcess(store), limit=2)
    first, second = lock.acquire(), reliable.single_instance("job", store=OtherProcess(store), limit=2).acquire()
    assert isinstance(first, reliable.Lease)
    assert isinstance(second, reliable.Lease)
    first.release()
    third = lock.acquire()
    assert isinstance(third, reliable.Lease)
    third.release()
    second.release()

    assert (0, 1, 0) == (first.slot, second.slot, third.slot)
    assert first.token < second.token < third.token


def test_every_form_holds_a_store_lease(store: Store, clock: FakeClock, mode: Mode) -> None:
    """Decorator and context manager, sync and async, hold a store lease while the body runs."""
    seen = mode.run(reliable.single_instance("job", store=store), lambda lease: (lease, store.get("lock:job:0")))

    lease, record = seen
    assert (lease.backend, record.value["owner"]) == ("store", lease._owner_id)
    assert store.get("lock:job:0") is None


def test_skip_and_raise_name_the_other_holder(store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A lease of another process makes skip return SKIPPED (logged) and raise name its pid and host."""
    dead_holder(store)

    with caplog.at_level(logging.INFO, logger="reliable.single_instance"):
        skipped = reliable.single_instance("job", store=store).acquire()
    with pytest.raises(reliable.AlreadyRunningError, match="held by pid 999999 on elsewhere since"):
        reliable.single_instance("job", store=store, on_conflict="raise").acquire()

    assert skipped is reliable.SKIPPED
    assert "skipped: already running (held by pid 999999 on elsewhere since" in caplog.text


def test_wait_outlasts_a_dead_holder_on_the_clock(store: Store, clock: FakeClock, events: Events) -> None:
    """on_conflict='wait' polls through the library clock and takes the lease once the dead holder's TTL ran out."""
    dead = dead_holder(store, ttl=30)

    with reliable.single_instance("job", store=store, on_conflict="wait", timeout=120) as lease:
        pass

    # Server stores keep expiry times to the microsecond, so the wait may end a hair before 30 s.
    assert 30 - 1e-3 <= clock.advanced < 32
    assert lease.token > dead
    (waited,) = events.named("waited")
    assert waited.attributes["reliable.lock.acquired"] is True


def test_wait_times_out_on_the_clock(store: Store, clock: FakeClock) -> None:
    """on_conflict='wait' gives up after *timeout* seconds of the library clock."""
    dead_holder(store, ttl=300)

    with pytest.raises(reliable.AlreadyRunningError, match=r"still running after waiting 10\.0s"):
        reliable.single_instance("job", store=store, on_conflict="wait", timeout=10).acquire()

    assert 10 == pytest.approx(clock.advanced)


def test_renew_extends_the_lease(store: Store, clock: FakeClock, events: Events) -> None:
    """renew() moves the record's expiry forward by the TTL and reports a renewed event."""
    with reliable.single_instance("job", store=store, ttl=30) as lease:
        before = store.get("lock:job:0")
        clock.advance(5)
        lease.renew()
        after = store.get("lock:job:0")

    assert before is not None
    assert after is not None
    assert after.expires_at == pytest.approx(before.expires_at + 5, abs=0.5)
    assert lease.token == after.value["token"]
    assert events.named("renewed")


@pytest.mark.parametrize("use_async", [False, True], ids=["thread", "task"])
def test_background_renewal_keeps_the_lease_for_many_ttls(
    store: Store, clock: FakeClock, events: Events, use_async: bool
) -> None:
    """The renewer (thread, or task for async) renews every ttl/3 of the library clock: the lease outlives its TTL."""

    def step(n: int) -> None:
        clock.advance(1.1)
        events.wait_for("renewed", n)

    if use_async:

        async def main() -> reliable.Lease:
            async with reliable.single_instance("job", store=store, ttl=3) as lease:
                for n in range(1, 7):
                    clock.advance(1.1)
                    while len(events.named("renewed")) < n:
                        await asyncio.sleep(0.001)
                await lease.acheck()
                return lease

        lease = asyncio.run(main())
    else:
        with reliable.single_instance("job", store=store, ttl=3) as lease:
            for n in range(1, 7):
                step(n)
            lease.check()

    assert 6 == len(events.named("renewed"))
    assert not lease.lost
    assert 6.6 == pytest.approx(clock.advanced)


@pytest.mark.parametrize("use_async", [False, True], ids=["thread", "task"])
def test_renewals_reach_the_listeners_of_the_acquiring_context(
    store: Store, clock: FakeClock, events: Events, use_async: bool
) -> None:
    """The renewer runs in a copy of the acquiring context, so a scoped listener (observed) sees renewals."""
    seen: list[str] = []

    def listener(event: _telemetry.Event) -> None:
        seen.append(event.name)

    if use_async:

        async def main() -> None:
            with _telemetry.listening(listener):
                async with reliable.single_instance("job", store=store, ttl=3):
                    clock.advance(1.1)
                    while not events.named("renewed"):
                        await asyncio.sleep(0.001)

        asyncio.run(main())
    else:
        with _telemetry.listening(listener):
            with reliable.single_instance("job", store=store, ttl=3):
                clock.advance(1.1)
                events.wait_for("renewed")

    assert "reliable.single_instance.renewed" in seen


def test_a_lease_past_its_ttl_is_lost(store: Store, clock: FakeClock, events: Events, monkeypatch: Any) -> None:
    """Past its TTL without renewal the lease is lost: lost is set, check() raises, an alert goes out."""
    alerts: list[Any] = []
    monkeypatch.setattr("reliable._alerting.fire", lambda alert, **kw: alerts.append(alert))

    with reliable.single_instance("job", store=store, ttl=3) as lease:
        clock.advance(10)
        assert lease.lost
        with pytest.raises(reliable.LeaseLostError, match="not renewed within its ttl"):
            lease.check()

    (lost,) = events.named("lost")
    assert logging.ERROR == lost.level
    assert ["lease_lost"] == [a.kind for a in alerts]
    assert "job" == alerts[0].operation


def test_takeover_is_detected_and_never_undone(store: Store, clock: FakeClock) -> None:
    """Another holder that took an expired lease has a larger token; the old holder's check() raises, and its
    release leaves the new lease alone."""
    old = reliable.single_instance("job", store=store, ttl=3).acquire()
    assert isinstance(old, reliable.Lease)
    old._stop_renewing()  # a paused process: no renewal
    clock.advance(4)
    new = reliable.single_instance("job", store=OtherProcess(store), ttl=30, on_conflict="raise").acquire()

    with pytest.raises(reliable.LeaseLostError):
        old.check()
    old.release()
    record = store.get("lock:job:0")
    new.release()

    assert new.token > old.token
    assert record is not None
    assert new.token == holder_from_record("job", record).token


def test_check_asks_the_store(store: Store, clock: FakeClock) -> None:
    """check() finds out from the store when the lease now belongs to someone else, even within its TTL."""
    with reliable.single_instance("job", store=store, ttl=30) as lease:
        store.set("lock:job:0", {"owner": "someone else"}, ttl=30)
        with pytest.raises(reliable.LeaseLostError, match="another holder"):
            lease.check()

    assert {"owner": "someone else"} == store.get("lock:job:0").value  # type: ignore[union-attr]


def test_transient_renewal_failures_are_retried_then_lost(store: Store, clock: FakeClock, events: Events) -> None:
    """A renewal the store cannot answer is retried sooner; if it cannot renew within the TTL the lease is lost."""
    flaky = Flaky(store)
    with reliable.single_instance("job", store=flaky, ttl=3) as lease:
        flaky.failing = True
        clock.advance(1.1)
        events.wait_for("renew_failed")
        flaky.failing = False
        clock.advance(0.3)
        events.wait_for("renewed")
        assert not lease.lost
        flaky.failing = True
        for _ in range(12):
            clock.advance(0.3)
        events.wait_for("lost")

    assert lease.lost
    assert 1 == len(events.named("lost"))


def test_limit_admits_that_many_holders(store: Store, clock: FakeClock) -> None:
    """limit=2: two holders hold slots 0 and 1; a third skips."""
    first = reliable.single_instance("job", store=OtherProcess(store), limit=2).acquire()
    second = reliable.single_instance("job", store=OtherProcess(store), limit=2).acquire()
    third = reliable.single_instance("job", store=OtherProcess(store), limit=2).acquire()

    assert isinstance(first, reliable.Lease)
    assert isinstance(second, reliable.Lease)
    assert ({0, 1}, reliable.SKIPPED) == ({first.slot, second.slot}, third)
    assert ["lock:job:0", "lock:job:1"] == [r.key for r in store.scan("lock:")]
    first.release()
    second.release()


class LateReply(OtherProcess):
    """Writes its first claim at once but answers 31 s later, after another process took the lease over."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        super().__init__(store)
        self.clock = clock
        self.taker: Any = None

    def put_if_absent(self, *args: Any, **kwargs: Any) -> Any:
        reply = self._store.put_if_absent(*args, **kwargs)
        if self.taker is None:
            self.clock.advance(31)
            self.taker = reliable.single_instance("job", store=OtherProcess(self._store), on_conflict="raise").acquire()
        return reply


def test_a_claim_answered_after_its_ttl_is_not_held(store: Store, clock: FakeClock) -> None:
    """A claim whose reply comes back after its TTL is given up (a later holder may have the lease, with a larger
    token): the caller skips, naming the holder, and the later holder keeps its lease."""
    late = LateReply(store, clock)

    with pytest.raises(reliable.AlreadyRunningError) as caught:
        reliable.single_instance("job", store=late, ttl=30, on_conflict="raise").acquire()

    record = store.get("lock:job:0")
    assert record is not None
    assert [late.taker.token] == [h["token"] for h in caught.value.holders]  # type: ignore[attr-defined]
    assert late.taker.token == holder_from_record("job", record).token
    late.taker.check()
    late.taker.release()


def test_forked_child_never_deletes_the_parents_lease(store: Store, clock: FakeClock, monkeypatch: Any) -> None:
    """A lease object inherited by a forked child: its release deletes nothing and its check raises."""
    lease = reliable.single_instance("job", store=store).acquire()
    assert isinstance(lease, reliable.Lease)
    monkeypatch.setattr(_lock_registry, "pid", lease.pid + 1)

    with pytest.raises(reliable.LeaseLostError, match="forked child"):
        lease.check()
    lease.release()
    monkeypatch.undo()

    assert store.get("lock:job:0") is not None
    store.delete("lock:job:0")


def test_async_twins(store: Store, clock: FakeClock) -> None:
    """arenew, acheck and arelease do what their sync twins do."""

    async def main() -> tuple[float, float, bool]:
        lease = await reliable.single_instance("job", store=store, ttl=30).aacquire()
        assert isinstance(lease, reliable.Lease)
        before = store.get("lock:job:0").expires_at  # type: ignore[union-attr]
        clock.advance(5)
        await lease.arenew()
        await lease.acheck()
        after = store.get("lock:job:0").expires_at  # type: ignore[union-attr]
        await lease.arelease()
        return before, after, store.get("lock:job:0") is None  # type: ignore[return-value]

    before, after, gone = asyncio.run(main())

    assert after == pytest.approx(before + 5, abs=0.5)
    assert gone


def test_a_forgotten_lease_of_a_dead_store_never_blocks_a_new_store(clock: FakeClock) -> None:
    """A lease left unreleased on a store that was then garbage-collected does not make a new store's lock look
    held, even if the new store object lands at the same address (keys hold the store, not its id())."""
    import gc

    from reliable.stores.memory import MemoryStore

    for _ in range(50):
        old = MemoryStore()
        lease = reliable.single_instance("job", store=old, ttl=30).acquire()
        assert isinstance(lease, reliable.Lease)
        del old, lease
        gc.collect()
        fresh = MemoryStore()

        again = reliable.single_instance("job", store=fresh, ttl=30).acquire()

        assert isinstance(again, reliable.Lease)
        again.release()
