"""reliable.testing.FaultyStore: unavailable, flaky and slow stores, store fault points, and crashed processes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from reliable import ConfigError, StoreUnavailableError
from reliable.stores import Store
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, Faults, FaultyStore, SimulatedCrash, installed


@pytest.fixture
def faults() -> Any:
    with Faults(seed=11) as made:
        yield made


def exercise(store: Any) -> list[Any]:
    """Every Store operation once, in an order that makes each succeed on a fresh store."""
    record, created = store.put_if_absent("k", {"n": 1}, ttl=60)
    replaced = store.compare_and_set("k", {"n": 2}, version=record.version)
    store.set("other", b"raw")
    return [
        created,
        replaced.value,
        store.get("k").value,
        store.incr("counter", 5),
        [r.key for r in store.scan("")],
        store.delete("other"),
        store.now() > 0,
    ]


async def aexercise(store: Any) -> list[Any]:
    """The async twin of `exercise`."""
    record, created = await store.aput_if_absent("k", {"n": 1}, ttl=60)
    replaced = await store.acompare_and_set("k", {"n": 2}, version=record.version)
    await store.aset("other", b"raw")
    return [
        created,
        replaced.value,
        (await store.aget("k")).value,
        await store.aincr("counter", 5),
        [r.key for r in await store.ascan("")],
        await store.adelete("other"),
        await store.anow() > 0,
    ]


EXPECTED = [True, {"n": 2}, {"n": 2}, 5, ["counter", "k", "other"], True, True]


def test_healthy_store_delegates_every_operation(store: Store, faults: Faults) -> None:
    """A healthy FaultyStore behaves exactly like the store it wraps, and counts calls per operation."""
    faulty = faults.wrap_store(store)

    result = exercise(faulty)

    assert EXPECTED == result
    assert {
        "put_if_absent": 1,
        "compare_and_set": 1,
        "set": 1,
        "get": 1,
        "incr": 1,
        "scan": 1,
        "delete": 1,
        "now": 1,
    } == dict(faulty.calls)
    assert isinstance(faulty, Store)


def test_healthy_store_delegates_async(store: Store, faults: Faults) -> None:
    """The async twins delegate to the wrapped store's own async methods."""
    faulty = faults.wrap_store(store)

    result = asyncio.run(aexercise(faulty))

    assert EXPECTED == result


def test_sync_only_store_still_serves_async_calls(faults: Faults) -> None:
    """A wrapped store without async twins is called synchronously from the async methods."""

    class SyncOnly:
        def __init__(self) -> None:
            self.inner = MemoryStore()

        def __getattr__(self, name: str) -> Any:
            if name.startswith("a") and name[1:] in (
                "now",
                "get",
                "put_if_absent",
                "compare_and_set",
                "set",
                "delete",
                "incr",
                "scan",
                "close",
            ):
                raise AttributeError(name)
            return getattr(self.inner, name)

    faulty = faults.wrap_store(SyncOnly())  # type: ignore[arg-type]

    result = asyncio.run(aexercise(faulty))
    asyncio.run(faulty.aclose())

    assert EXPECTED == result


def test_unavailable_store_raises_store_unavailable(store: Store, faults: Faults) -> None:
    """unavailable(): every operation raises StoreUnavailableError caused by a refused connection."""
    faulty = faults.wrap_store(store)
    faulty.set("k", 1)
    faulty.unavailable()

    with pytest.raises(StoreUnavailableError) as info:
        faulty.get("k")
    with pytest.raises(StoreUnavailableError):
        asyncio.run(faulty.aset("k", 2))
    faulty.healthy()

    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert "unavailable" in str(info.value)
    assert 1 == faulty.get("k").value
    assert ["unavailable", "unavailable"] == [f.kind for f in faults.log]


def test_unavailable_for_some_operations(store: Store, faults: Faults) -> None:
    """ops= limits a mode to some operations: reads work while writes fail."""
    faulty = faults.wrap_store(store)
    faulty.set("k", 1)
    faulty.unavailable(ops=["set", "put_if_absent"])

    value = faulty.get("k").value
    with pytest.raises(StoreUnavailableError):
        faulty.set("k", 2)

    assert 1 == value


def test_mode_as_context_manager_switches_back(faults: Faults) -> None:
    """`with store.unavailable():` restores the previous mode at the end of the block."""
    faulty = faults.wrap_store(MemoryStore())

    with faulty.unavailable() as same:
        inside = faulty.mode
    after = faulty.mode

    assert (same, inside, after) == (faulty, "unavailable", "healthy")


def test_flaky_is_seeded_and_reproducible() -> None:
    """flaky(rate) fails the same operations for the same seed, and about *rate* of them."""

    def pattern(seed: int) -> list[bool]:
        with Faults(seed=seed) as faults:
            faulty = faults.wrap_store(MemoryStore())
            faulty.flaky(0.25)
            seen = []
            for _ in range(200):
                try:
                    faulty.incr("n")
                    seen.append(False)
                except StoreUnavailableError:
                    seen.append(True)
            return seen

    first, again, other = pattern(1), pattern(1), pattern(2)

    assert first == again
    assert first != other
    assert 25 <= sum(first) <= 75


def test_flaky_uses_the_faults_rate() -> None:
    """flaky() without a rate uses the Faults' rate."""
    with Faults(rate=1.0) as faults:
        faulty = faults.wrap_store(MemoryStore())
        faulty.flaky()

        with pytest.raises(StoreUnavailableError, match="flaky"):
            faulty.get("k")


def test_slow_store_advances_the_fake_clock(faults: Faults) -> None:
    """slow(seconds): every operation takes that long on the fake clock, sync and async."""
    clock = FakeClock(start=0)
    faulty = faults.wrap_store(MemoryStore())
    faulty.slow("1.5s")

    with installed(clock):
        faulty.set("k", 1)
        asyncio.run(faulty.aget("k"))

    assert (3.0, [1.5, 1.5]) == (clock.time(), clock.sleeps)


@pytest.mark.parametrize(
    ("switch", "fragment"),
    [
        (lambda s: s.flaky(2), "rate=2"),
        (lambda s: s.slow(-1), "duration=-1"),
        (lambda s: s.unavailable(ops=["get", "explode"]), "['explode']"),
    ],
)
def test_bad_mode_arguments(switch: Any, fragment: str, faults: Faults) -> None:
    """Bad mode arguments are ConfigErrors naming the parameter."""
    with pytest.raises(ConfigError) as info:
        switch(faults.wrap_store(MemoryStore()))

    assert fragment in str(info.value)


def test_store_point_rule_fails_counted_calls(store: Store, faults: Faults) -> None:
    """fail('store.put_if_absent', times=2) fails the first two claims; the third lands."""
    faulty = faults.wrap_store(store)
    faults.fail("store.put_if_absent", times=2)

    failures = 0
    for _ in range(3):
        try:
            _, created = faulty.put_if_absent("k", 1)
        except StoreUnavailableError:
            failures += 1

    assert (2, True) == (failures, created)
    assert ["store.put_if_absent"] * 2 == [f.point for f in faults.log]


def test_store_wildcard_point_applies_to_every_operation(faults: Faults) -> None:
    """'store.*' rules see every operation, and the log names the concrete one."""
    faulty = faults.wrap_store(MemoryStore())
    faults.fail("store.*", times=2)

    with pytest.raises(StoreUnavailableError):
        faulty.get("a")
    with pytest.raises(StoreUnavailableError):
        asyncio.run(faulty.aset("a", 1))
    faulty.get("a")

    assert ["store.get", "store.set"] == [f.point for f in faults.log]


def test_store_point_script_can_return_a_value(faults: Faults) -> None:
    """A script at a store point may return a canned value instead of calling the store."""
    faulty = faults.wrap_store(MemoryStore())
    faulty.set("k", 1)
    faults.script("store.get", [None])

    assert (None, 1) == (faulty.get("k"), faulty.get("k").value)  # type: ignore[union-attr]


def test_crash_at_store_point_stops_the_write(store: Store, faults: Faults) -> None:
    """crash('store.compare_and_set'): the completion never lands, the record stays as it was."""
    faulty = faults.wrap_store(store)
    record, _ = faulty.put_if_absent("job", "in-progress")
    faults.crash("store.compare_and_set")

    with pytest.raises(SimulatedCrash):
        faulty.compare_and_set("job", "done", version=record.version)

    assert "in-progress" == faulty.get("job").value  # type: ignore[union-attr]


def test_crash_that_lands_at_store_point(store: Store, faults: Faults) -> None:
    """crash(lands=True) at a store point: the write lands, then the process dies."""
    faulty = faults.wrap_store(store)
    faults.crash("store.set", lands=True)

    with pytest.raises(SimulatedCrash):
        faulty.set("k", "written")

    assert "written" == faulty.get("k").value  # type: ignore[union-attr]


def test_crashed_process_cannot_clean_up(store: Store, faults: Faults) -> None:
    """While a SimulatedCrash propagates, the store refuses work, so a finally block cannot release a claim."""
    faulty = faults.wrap_store(store)
    refused: list[BaseException] = []

    def holder() -> None:
        faulty.put_if_absent("lock", "me", ttl=30)
        try:
            faults.crash(f"{__name__}:do_work")
            do_work()
        finally:
            try:
                faulty.delete("lock")  # the release a crashed process never performs
            except StoreUnavailableError as exc:
                refused.append(exc)

    with pytest.raises(SimulatedCrash):
        holder()

    assert "me" == faulty.get("lock").value  # type: ignore[union-attr]
    assert ["crash", "crash"] == [f.kind for f in faults.log]
    assert "refused" in faults.log[1].detail
    assert isinstance(refused[0].__context__, SimulatedCrash)
    assert "refused: the process crashed" in str(refused[0])


def test_crashed_process_cannot_clean_up_async(faults: Faults) -> None:
    """The same holds in a coroutine's finally block."""
    faulty = faults.wrap_store(MemoryStore())

    async def holder() -> None:
        await faulty.aput_if_absent("lock", "me", ttl=30)
        try:
            faults.crash(f"{__name__}:do_work")
            do_work()
        finally:
            with contextlib.suppress(StoreUnavailableError):
                await faulty.adelete("lock")

    with pytest.raises(SimulatedCrash):
        asyncio.run(holder())

    assert "me" == faulty.get("lock").value  # type: ignore[union-attr]


def test_undo_heals_wrapped_stores() -> None:
    """Faults.undo() (the end of the block or test) makes every wrapped store healthy."""
    with Faults() as faults:
        faulty = faults.wrap_store(MemoryStore())
        faulty.unavailable()

    assert ("healthy", None) == (faulty.mode, faulty.get("k"))
    assert "FaultyStore(MemoryStore" in repr(faulty)


def test_close_is_a_fault_point(faults: Faults) -> None:
    """close() and aclose() go through the faults and reach the inner store."""
    inner = MemoryStore()
    faulty: FaultyStore = faults.wrap_store(inner)
    faults.fail("store.close")

    with pytest.raises(StoreUnavailableError):
        faulty.close()
    faulty.close()

    with pytest.raises(StoreUnavailableError, match="closed"):
        inner.get("k")


def do_work() -> None:
    """The work a holder does; crashed by the tests."""
