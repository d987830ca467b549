"""`reliable.idempotent` at the edges: foreign records, undecodable results, failing stores, sync and async mixed."""

# ruff: noqa: F811  (pytest fixtures imported from test_idempotent_support are redefined as parameters)

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Any

import pytest

import reliable
from reliable import StoreUnavailableError
from reliable import _idempotency_core as core
from reliable._serialize import JSONSerializer, PickleSerializer
from reliable.stores import Store
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, installed
from test_idempotent_support import Counting, clock, events, names  # noqa: F401

REAL_TIMEOUT = 5.0


class Failing(Counting):
    """A store proxy whose operation *name* raises StoreUnavailableError the next *times* calls."""

    def __init__(self, inner: Any, name: str, times: int = 1) -> None:
        super().__init__(inner)
        self.failing, self.times = name, times

    def __getattr__(self, name: str) -> Any:
        attr = super().__getattr__(name)
        if name.removeprefix("a") != self.failing or not callable(attr):
            return attr

        def maybe_fail(*args: Any, **kwargs: Any) -> Any:
            if self.times > 0:
                self.times -= 1
                raise reliable.StoreUnavailableError("store down", address="test://")
            return attr(*args, **kwargs)

        async def amaybe_fail(*args: Any, **kwargs: Any) -> Any:
            return await maybe_fail(*args, **kwargs)

        return amaybe_fail if name.startswith("a") else maybe_fail


def test_foreign_record_at_the_key_is_an_error(store: Store) -> None:
    """A key holding another component's value raises IdempotencyError and the function does not run."""
    store.set("idempotent:foreign:k", {"something": "else"})
    runs: list[int] = []
    g = reliable.idempotent(store=store, name="foreign", key=lambda k: k)(lambda k: runs.append(1))

    with pytest.raises(reliable.IdempotencyError, match="not an idempotency record"):
        g("k")

    assert [] == runs


def test_undecodable_stored_result_is_an_error(store: Store) -> None:
    """A stored result whose class cannot be found any more raises IdempotencyError naming the fix."""
    value = b'{"status":"COMPLETED","fp":null,"result":{"$":"dataclass","type":"nowhere:Gone","v":{}}}'
    store.set("idempotent:gone:k", value)
    g = reliable.idempotent(store=store, name="gone", key=lambda k: k)(lambda k: 1)

    with pytest.raises(reliable.IdempotencyError, match="cannot be decoded"):
        g("k")


def test_cached_error_that_cannot_be_rebuilt(store: Store) -> None:
    """A cached error whose class is not in cache_errors any more comes back as IdempotencyError with its message."""
    error = {"type": "builtins:KeyError", "args": ["x"], "message": "'x'"}
    store.set("idempotent:rebuilt:k", core._dumps({"status": "COMPLETED", "fp": None, "error": error}).encode())
    g = reliable.idempotent(store=store, name="rebuilt", key=lambda k: k, cache_errors=ValueError)(lambda k: 1)

    with pytest.raises(reliable.IdempotencyError, match=r"raised builtins:KeyError .* earlier: 'x'") as info:
        g("k")

    assert "builtins:KeyError" == info.value.error_type


class Unprintable(Exception):
    """An exception whose args are not JSON."""


def test_cached_error_with_unserializable_args(store: Store) -> None:
    """A cached exception whose args cannot be stored is rebuilt from its message."""
    g = reliable.idempotent(store=store, name="args", key=lambda k: k, cache_errors=Unprintable)(
        lambda k: (_ for _ in ()).throw(Unprintable(object()))
    )

    with pytest.raises(Unprintable):
        g("k")
    with pytest.raises(Unprintable) as replayed:
        g("k")

    assert replayed.value.args[0].startswith("<object object")


def test_release_failure_keeps_the_function_error(events: list[Any]) -> None:
    """If the store fails while releasing, the function's own exception still propagates and a warning is emitted."""
    store = Failing(MemoryStore(), "delete")
    g = reliable.idempotent(store=store, key=lambda: "k")(lambda: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        g()

    assert "release_failed" in names(events)


def test_store_failure_on_claim_propagates_and_frees_the_flight() -> None:
    """A store error on the claim reaches the caller; the next call (store back) runs normally."""
    store = Failing(MemoryStore(), "put_if_absent")
    g = reliable.idempotent(store=store, key=lambda: "k")(lambda: "ran")

    with pytest.raises(reliable.StoreUnavailableError):
        g()

    assert "ran" == g()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_renewal_failure_is_retried(mode: str, clock: FakeClock, events: list[Any]) -> None:
    """A renewal that fails (store down) is reported and retried at the next interval; the claim survives."""
    store = Failing(MemoryStore(), "compare_and_set")
    inside, release = threading.Event(), threading.Event()
    key = "idempotent:renew-fail:k"

    def body() -> str:
        inside.set()
        assert release.wait(REAL_TIMEOUT)
        return "done"

    async def abody() -> str:
        inside.set()
        while not release.is_set():
            await asyncio.sleep(0.005)
        return "done"

    fn = reliable.idempotent(store=store, name="renew-fail", key=lambda: "k", lease=30)(
        body if mode == "sync" else abody
    )
    outcome: list[Any] = []
    call = fn if mode == "sync" else (lambda: asyncio.run(fn()))  # type: ignore[arg-type]
    thread = threading.Thread(target=lambda: outcome.append(call()))
    thread.start()
    assert inside.wait(REAL_TIMEOUT)
    first = store.inner.get(key).version
    clock.advance(11)
    _eventually(lambda: "renew_failed" in names(events))
    clock.advance(11)
    _eventually(lambda: store.inner.get(key).version != first)
    release.set()
    thread.join(REAL_TIMEOUT)

    assert ["done"] == outcome


def test_async_waiter_of_a_sync_holder_in_another_thread(clock: FakeClock) -> None:
    """An async caller waits for a sync holder of the same key in another thread, then replays its result."""
    store = MemoryStore()
    inside, release = threading.Event(), threading.Event()
    runs: list[str] = []

    @reliable.idempotent(store=store, name="mixed", key=lambda: "k")
    def sync_work() -> str:
        runs.append("sync")
        inside.set()
        assert release.wait(REAL_TIMEOUT)
        return "from sync"

    @reliable.idempotent(store=store, name="mixed", key=lambda: "k")
    async def async_work() -> str:
        runs.append("async")
        return "from async"

    thread = threading.Thread(target=sync_work)
    thread.start()
    assert inside.wait(REAL_TIMEOUT)

    async def main() -> str:
        waiter = asyncio.ensure_future(async_work())
        await asyncio.sleep(0.01)
        release.set()
        return await waiter

    result = asyncio.run(main())
    thread.join(REAL_TIMEOUT)

    assert ("from sync", ["sync"], []) == (result, runs, clock.sleeps)


def test_async_function_needs_an_async_store() -> None:
    """An async function with a store that has no asyncio methods raises ConfigError on call."""

    class SyncOnly:
        def __init__(self) -> None:
            self.inner = MemoryStore()

        def put_if_absent(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.put_if_absent(*args, **kwargs)

    @reliable.idempotent(store=SyncOnly())  # type: ignore[arg-type]
    async def work() -> None: ...

    with pytest.raises(reliable.ConfigError, match="asyncio methods"):
        asyncio.run(work())


def test_decorating_a_non_callable() -> None:
    """Decorating something that is not a function raises ConfigError."""
    with pytest.raises(reliable.ConfigError, match="decorates functions"):
        reliable.idempotent()(42)  # type: ignore[arg-type]


def test_key_callable_returning_an_object(store: Store) -> None:
    """A key callable returning an object without a canonical form raises ConfigError asking for a str."""
    g = reliable.idempotent(store=store, key=lambda: object())(lambda: 1)

    with pytest.raises(reliable.ConfigError, match="return a str"):
        g()


def test_fingerprint_callable_with_default_key(store: Store) -> None:
    """With the default key, fingerprint= still decides what is compared."""
    g = reliable.idempotent(store=store, name="fpd", fingerprint=lambda a, note: a)(lambda a, note: a)

    assert (1, 1) == (g(1, "x"), g(1, "x"))


def test_fingerprint_callable_returning_an_object(store: Store) -> None:
    """A fingerprint callable returning an object without a canonical form raises ConfigError."""
    g = reliable.idempotent(store=store, key=lambda: "k", fingerprint=lambda: object())(lambda: 1)

    with pytest.raises(reliable.ConfigError, match="fingerprint="):
        g()


class Local:
    pass


@dataclasses.dataclass
class WithComputed:
    a: int
    b: int = dataclasses.field(init=False, default=0)


def test_serializer_edges() -> None:
    """Local classes are refused at dump time; init=False dataclass fields come back; mismatched tags fail to load."""
    s = JSONSerializer()

    @dataclasses.dataclass
    class Inner:
        x: int

    with pytest.raises(TypeError, match="define it at module level"):
        s.dumps(Inner(1))
    value = WithComputed(1)
    value.b = 7
    with pytest.raises(TypeError, match="not a class of that kind"):
        s.loads({"$": "dataclass", "type": f"{__name__}:Local", "v": {}})
    with pytest.raises(TypeError, match="not a class"):
        s.loads({"$": "enum", "type": f"{__name__}:REAL_TIMEOUT", "v": 1})

    assert (value, 7) == (s.loads(s.dumps(value)), s.loads(s.dumps(value)).b)
    assert ("JSONSerializer()", "PickleSerializer()") == (repr(s), repr(PickleSerializer()))


def _eventually(check: Any) -> None:
    deadline = time.monotonic() + REAL_TIMEOUT
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_blocking_call_on_the_loop_of_an_async_holder_raises() -> None:
    """A sync call made from the thread whose event loop runs the async holder raises instead of blocking the loop."""
    store = MemoryStore()
    inside = asyncio.Event()

    @reliable.idempotent(store=store, name="loop", key=lambda: "k")
    async def holder() -> str:
        inside.set()
        await asyncio.sleep(0.01)
        return "async"

    blocking = reliable.idempotent(store=store, name="loop", key=lambda: "k")(lambda: "sync")

    async def main() -> tuple[str, str]:
        task = asyncio.ensure_future(holder())
        await inside.wait()
        with pytest.raises(reliable.InProgressError, match="waiting would never end"):
            blocking()
        return await task, blocking()

    assert ("async", "async") == asyncio.run(main())


class _FlakyCompletion:
    """A MemoryStore whose next compare-and-sets fail: before writing, or after writing (a lost reply)."""

    def __init__(self, failures: int, *, applied: bool) -> None:
        self.inner = MemoryStore()
        self.failures = failures
        self.applied = applied

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def compare_and_set(self, key: str, value: Any, *, version: int, ttl: float | None = None) -> Any:
        if self.failures:
            self.failures -= 1
            if self.applied:
                self.inner.compare_and_set(key, value, version=version, ttl=ttl)
            raise StoreUnavailableError("store restarting", address="memory://")
        return self.inner.compare_and_set(key, value, version=version, ttl=ttl)


@pytest.mark.parametrize("applied", [False, True], ids=["not-applied", "reply-lost"])
def test_completion_rides_out_a_short_store_outage(applied: bool) -> None:
    """When storing the result fails a few times (written or not), the call still completes once and replays."""
    store = _FlakyCompletion(3, applied=applied)
    effects: list[str] = []

    @reliable.idempotent(store=store, key=lambda key: key, name="flaky-completion")
    def work(key: str) -> str:
        effects.append(key)
        return f"done {key}"

    with installed(FakeClock()) as clock:
        first = work("k")
        again = work("k")

    assert ("done k", "done k", ["k"]) == (first, again, effects)
    assert 0 < clock.advanced < 1


def test_completion_gives_up_after_a_long_outage() -> None:
    """A store that stays down while the result is stored surfaces StoreUnavailableError after the retries."""
    store = _FlakyCompletion(100, applied=False)

    @reliable.idempotent(store=store, key=lambda key: key, name="down-completion")
    def work(key: str) -> str:
        return key

    with installed(FakeClock()), pytest.raises(StoreUnavailableError):
        work("k")

    assert 95 == store.failures
