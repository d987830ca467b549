"""The store conformance suite: the executable definition of `reliable.stores.Store`.

Each check is a plain function taking a store factory and the installed `FakeClock`.
Checks in `CHECKS` run twice: on the blocking methods, and on the ``a``-twins (through
`_Awaited`, a blocking view of the async methods); `THREAD_CHECKS` run blocking only and
`ASYNC_CHECKS` are coroutines. `cases()` lists them all and `check_store` runs them, the way
trio's ``check_one_way_stream`` ships its stream contract. The multi-process race
(`race_processes`) needs a store URL, so it is kept out of `check_store`.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .._errors import ConfigError, StoreError, StoreUnavailableError
from .._internal._clock import installed
from ..stores._codec import MAX_KEY_LENGTH
from ..stores._protocol import AsyncStore, Record
from ._fake_clock import FakeClock

__all__ = ["ASYNC_CHECKS", "CHECKS", "THREAD_CHECKS", "Case", "cases", "check_store", "race_processes"]

T = TypeVar("T")
StoreFactory = Callable[[], Any]
"""Returns a new, empty store each call, whose time follows the library clock."""
Check = Callable[[StoreFactory, FakeClock], None]
AsyncCheck = Callable[[StoreFactory, FakeClock], Coroutine[Any, Any, None]]
Mode = Literal["sync", "async"]

SLACK = 1.0
"""Seconds a store's ``now()`` may differ from the fake clock (stores with server time: Redis, PostgreSQL)."""


# -- assertions that work under ``python -O`` and name what was checked ---------------


def _eq(expected: object, actual: object, what: str) -> None:
    if expected != actual:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def _true(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def _raises(error: type[BaseException], call: Callable[..., object], *args: Any, what: str, **kwargs: Any) -> None:
    try:
        result = call(*args, **kwargs)
    except error:
        return
    raise AssertionError(f"{what}: expected {error.__name__}, got a result: {result!r}")


@contextmanager
def _fresh(make_store: StoreFactory) -> Iterator[Any]:
    store = make_store()
    try:
        yield store
    finally:
        store.close()


# -- writes and versions -----------------------------------------------------------------


def check_get_absent(make_store: StoreFactory, clock: FakeClock) -> None:
    """A key never written reads as None."""
    with _fresh(make_store) as store:
        _eq(None, store.get("absent"), "get() of a key never written")


def check_put_if_absent(make_store: StoreFactory, clock: FakeClock) -> None:
    """put_if_absent creates once; later calls return the live record and created=False."""
    with _fresh(make_store) as store:
        record, created = store.put_if_absent("k", {"n": 1})
        _eq((True, "k", {"n": 1}, None), (created, record.key, record.value, record.expires_at), "first put")
        again, created_again = store.put_if_absent("k", {"n": 2}, ttl=5)
        _eq((False, record), (created_again, again), "second put returns the record already there")
        _eq(record, store.get("k"), "get() after put")


def check_put_if_absent_ttl(make_store: StoreFactory, clock: FakeClock) -> None:
    """A TTL sets expires_at to the store's now() plus the TTL; an int TTL works too."""
    with _fresh(make_store) as store:
        record, _ = store.put_if_absent("k", "v", ttl=30)
        _true(record.expires_at is not None, "put with ttl has an expiry")
        _true(abs(record.expires_at - 30 - store.now()) <= SLACK, f"expires_at {record.expires_at} is now()+30")
        _eq(record, store.get("k"), "get() returns the expiry written")


def check_compare_and_set(make_store: StoreFactory, clock: FakeClock) -> None:
    """compare_and_set writes only over the live record's version, and returns the new record."""
    with _fresh(make_store) as store:
        _eq(None, store.compare_and_set("k", 1, version=1), "CAS on an absent key")
        first, _ = store.put_if_absent("k", 1)
        second = store.compare_and_set("k", 2, version=first.version)
        _true(second is not None and second.version > first.version, f"CAS succeeds with a newer version: {second}")
        _eq(("k", 2, None), (second.key, second.value, second.expires_at), "the CAS result")
        _eq(None, store.compare_and_set("k", 3, version=first.version), "CAS with a stale version")
        _eq(second, store.get("k"), "a failed CAS leaves the record alone")


def check_compare_and_set_ttl(make_store: StoreFactory, clock: FakeClock) -> None:
    """Each write sets its own expiry: CAS with a TTL sets one, CAS without clears it."""
    with _fresh(make_store) as store:
        first, _ = store.put_if_absent("k", 1)
        timed = store.compare_and_set("k", 2, version=first.version, ttl=10)
        _true(timed is not None and timed.expires_at is not None, f"CAS with ttl sets an expiry: {timed}")
        plain = store.compare_and_set("k", 3, version=timed.version)
        _eq(None, plain and plain.expires_at, "CAS without ttl clears the expiry")
        clock.advance(11)
        _eq(3, store.get("k").value, "the record no longer expires")


def check_set(make_store: StoreFactory, clock: FakeClock) -> None:
    """set writes unconditionally and returns the record, with a newer version each time."""
    with _fresh(make_store) as store:
        first = store.set("k", "a")
        second = store.set("k", "b", ttl=5)
        _eq(("a", "b"), (first.value, second.value), "set values")
        _true(second.version > first.version, "set gives a newer version")
        _eq(second, store.get("k"), "get() after set")


def check_delete(make_store: StoreFactory, clock: FakeClock) -> None:
    """delete removes the live record, only at its version when one is given."""
    with _fresh(make_store) as store:
        _eq(False, store.delete("k"), "delete of an absent key")
        record = store.set("k", 1)
        _eq(False, store.delete("k", version=record.version + 1000), "delete with another version")
        _eq(record, store.get("k"), "a refused delete keeps the record")
        _eq(True, store.delete("k", version=record.version), "delete with the live version")
        _eq(None, store.get("k"), "get() after delete")
        store.set("k", 2)
        _eq((True, None), (store.delete("k"), store.get("k")), "delete without a version")


def check_versions_grow_store_wide(make_store: StoreFactory, clock: FakeClock) -> None:
    """Every write of any key gets a version above all earlier ones."""
    with _fresh(make_store) as store:
        versions = [
            store.put_if_absent("a", 1)[0].version,
            store.set("b", 1).version,
            store.compare_and_set("a", 2, version=store.get("a").version).version,
            (store.incr("c"), store.get("c").version)[1],
            store.set("a", 3).version,
        ]
        _eq(sorted(set(versions)), versions, "versions strictly increase across keys")


def check_versions_not_reused_after_delete(make_store: StoreFactory, clock: FakeClock) -> None:
    """A key deleted and created again gets a new version; the old one cannot CAS or delete it."""
    with _fresh(make_store) as store:
        old, _ = store.put_if_absent("k", "holder-1")
        store.delete("k", version=old.version)
        new, created = store.put_if_absent("k", "holder-2")
        _true(created and new.version > old.version, f"recreated record {new} has a newer version than {old}")
        _eq(None, store.compare_and_set("k", "stale", version=old.version), "CAS with the deleted version")
        _eq(False, store.delete("k", version=old.version), "delete with the deleted version")
        _eq("holder-2", store.get("k").value, "the new holder's value survives")


def check_versions_not_reused_after_expiry(make_store: StoreFactory, clock: FakeClock) -> None:
    """A key that expired and was created again gets a new version; the stale holder is refused."""
    with _fresh(make_store) as store:
        old, _ = store.put_if_absent("lease", "holder-1", ttl=5)
        clock.advance(6)
        new, created = store.put_if_absent("lease", "holder-2", ttl=5)
        _true(created and new.version > old.version, f"recreated record {new} has a newer version than {old}")
        _eq(None, store.compare_and_set("lease", "stale", version=old.version), "CAS with the expired version")
        _eq(False, store.delete("lease", version=old.version), "delete with the expired version")
        _eq("holder-2", store.get("lease").value, "the new holder's value survives")


# -- expiry ----------------------------------------------------------------------------------


def check_expiry_hides_records(make_store: StoreFactory, clock: FakeClock) -> None:
    """A record is live until its expiry and invisible to get and scan from then on."""
    with _fresh(make_store) as store:
        store.put_if_absent("t:1", "v", ttl=10)
        clock.advance(9)
        _eq(["t:1"], [r.key for r in store.scan("t:")], "scan before expiry")
        _eq("v", store.get("t:1").value, "get before expiry")
        clock.advance(2)
        _eq((None, []), (store.get("t:1"), store.scan("t:")), "get and scan after expiry")


def check_expiry_counts_as_absent_for_writes(make_store: StoreFactory, clock: FakeClock) -> None:
    """Writes treat an expired record as absent: put creates, CAS and delete refuse, incr restarts."""
    with _fresh(make_store) as store:
        old, _ = store.put_if_absent("k", "old", ttl=1)
        store.set("n", b"not a counter", ttl=1)
        clock.advance(2)
        _eq(None, store.compare_and_set("k", "x", version=old.version), "CAS on an expired record")
        _eq(False, store.delete("k"), "delete of an expired record")
        record, created = store.put_if_absent("k", "new")
        _eq((True, "new"), (created, record.value), "put_if_absent over an expired record")
        _eq(1, store.incr("n"), "incr over an expired record starts from 0")
        _eq(1, store.get("n").value, "the new counter is an int, whatever the expired record held")


# -- counters ----------------------------------------------------------------------------------


def check_incr(make_store: StoreFactory, clock: FakeClock) -> None:
    """incr adds to an int (absent counts as 0), returns the new value, and bumps the version."""
    with _fresh(make_store) as store:
        _eq([1, 2, 7, 4], [store.incr("n"), store.incr("n"), store.incr("n", 5), store.incr("n", -3)], "incr")
        before = store.get("n")
        _eq((4, None), (before.value, before.expires_at), "the counter is an int record without expiry")
        store.incr("n", 0)
        _true(store.get("n").version > before.version, "incr writes a new version")
        store.set("big", 2**70)
        _eq(2**70 + 1, store.incr("big"), "incr on a big int")


def check_incr_window(make_store: StoreFactory, clock: FakeClock) -> None:
    """incr's TTL applies when it creates the counter; later calls keep that window until it ends."""
    with _fresh(make_store) as store:
        _eq(1, store.incr("w", ttl=10), "first incr in the window")
        first_expiry = store.get("w").expires_at
        clock.advance(5)
        _eq(2, store.incr("w", ttl=10), "second incr in the window")
        _eq(first_expiry, store.get("w").expires_at, "later incr keeps the window's expiry")
        clock.advance(6)
        _eq(1, store.incr("w", ttl=10), "first incr of the next window")
        _true(store.get("w").expires_at > first_expiry, "the next window has a later expiry")


def check_incr_refuses_non_int(make_store: StoreFactory, clock: FakeClock) -> None:
    """incr on a key holding anything but an int raises StoreError and changes nothing."""
    with _fresh(make_store) as store:
        for value in ("3", 1.5, True, None, [1], {"n": 1}, b"1"):
            record = store.set("k", value)
            _raises(StoreError, store.incr, "k", what=f"incr on {value!r}")
            _eq(record, store.get("k"), f"a refused incr leaves {value!r} alone")


# -- scans --------------------------------------------------------------------------------------


def check_scan(make_store: StoreFactory, clock: FakeClock) -> None:
    """scan returns the live records whose key starts with the prefix, sorted by key; '' matches all."""
    keys = [
        "a",
        "a:1",
        "a:10",
        "a:2",
        "a:\u00e9",
        "a;",
        "b:1",
        "x%1",
        "x_1",
        "xa1",
        "y*1",
        "y?1",
        "y[1",
        "z\U0010ffff1",
        "\ud7ff1",
        "\ue000",
    ]
    with _fresh(make_store) as store:
        for key in reversed(keys):
            store.set(key, key.upper())
        _eq(["a:1", "a:10", "a:2", "a:\u00e9"], [r.key for r in store.scan("a:")], "scan('a:')")
        _eq(["A:1", "A:10"], [r.value for r in store.scan("a:1")], "values of scan('a:1')")
        _eq(keys, [r.key for r in store.scan("")], "scan('') lists every key in order")
        wild = [store.scan(p) for p in ("x%", "x_", "y*", "y?", "y[", "z\U0010ffff", "\ud7ff")]
        expected = [["x%1"], ["x_1"], ["y*1"], ["y?1"], ["y[1"], ["z\U0010ffff1"], ["\ud7ff1"]]
        _eq(expected, [[r.key for r in w] for w in wild], "scans of prefixes with wildcard or edge characters")
        _eq([], store.scan("c"), "scan of an unused prefix")
        _eq(store.get("a:2"), store.scan("a:2")[0], "scan returns whole records")


def check_scan_limit(make_store: StoreFactory, clock: FakeClock) -> None:
    """limit caps the number of live records returned, counting only live ones."""
    with _fresh(make_store) as store:
        store.set("s:0", 0, ttl=1)
        for i in range(1, 5):
            store.set(f"s:{i}", i)
        clock.advance(2)
        _eq(["s:1", "s:2"], [r.key for r in store.scan("s:", limit=2)], "scan with limit=2")
        _eq([], store.scan("s:", limit=0), "scan with limit=0")
        _eq(4, len(store.scan("s:", limit=100)), "a limit above the count")


# -- values ---------------------------------------------------------------------------------------

_VALUES: list[tuple[Any, Any]] = [
    (b"\x00\xffbytes", b"\x00\xffbytes"),
    (b"", b""),
    (bytearray(b"ba"), b"ba"),
    ("text \u00e9\u2603", "text \u00e9\u2603"),
    ("", ""),
    (0, 0),
    (-(2**63), -(2**63)),
    (2**80, 2**80),
    (1.5, 1.5),
    (True, True),
    (None, None),
    ([1, "a", None], [1, "a", None]),
    ((1, 2), [1, 2]),
    ({"nested": {"list": [1.25, False]}, "": 0}, {"nested": {"list": [1.25, False]}, "": 0}),
]


def check_values_round_trip(make_store: StoreFactory, clock: FakeClock) -> None:
    """Bytes come back as bytes and JSON values as JSON decodes them (a tuple as a list), type included."""
    with _fresh(make_store) as store:
        for i, (value, expected) in enumerate(_VALUES):
            written = store.set(f"v:{i}", value)
            read = store.get(f"v:{i}")
            for what, actual in (("set() result", written.value), ("get()", read.value)):
                _eq((type(expected), expected), (type(actual), actual), f"{what} of {value!r}")


def check_values_are_copies(make_store: StoreFactory, clock: FakeClock) -> None:
    """Mutating a value after writing it, or a value read back, never changes the stored record."""
    with _fresh(make_store) as store:
        value = {"items": [1]}
        store.set("k", value)
        value["items"].append(2)
        read = store.get("k").value
        read["items"].append(3)
        _eq({"items": [1]}, store.get("k").value, "stored value after mutations")


def check_unencodable_values(make_store: StoreFactory, clock: FakeClock) -> None:
    """A value that is neither bytes nor JSON-encodable raises ConfigError and writes nothing."""
    with _fresh(make_store) as store:
        record = store.set("k", "kept")
        for bad in (object(), {1, 2}, math.nan, math.inf, {"a": object()}, {(1, 2): 1}):
            _raises(ConfigError, store.put_if_absent, "new", bad, what=f"put_if_absent({bad!r})")
            _raises(ConfigError, store.set, "k", bad, what=f"set({bad!r})")
            _raises(ConfigError, store.compare_and_set, "k", bad, version=record.version, what=f"CAS({bad!r})")
        _eq((None, record), (store.get("new"), store.get("k")), "nothing written")


# -- bad arguments and lifecycle --------------------------------------------------------------------


def _calls(store: Any, key: Any) -> list[tuple[str, Callable[..., object]]]:
    return [
        ("get", functools.partial(store.get, key)),
        ("put_if_absent", functools.partial(store.put_if_absent, key, 1)),
        ("compare_and_set", functools.partial(store.compare_and_set, key, 1, version=1)),
        ("set", functools.partial(store.set, key, 1)),
        ("delete", functools.partial(store.delete, key)),
        ("incr", functools.partial(store.incr, key)),
    ]


def check_bad_keys(make_store: StoreFactory, clock: FakeClock) -> None:
    """Keys that are not non-empty str of at most MAX_KEY_LENGTH characters raise ConfigError."""
    with _fresh(make_store) as store:
        for bad in ("", None, 1, b"key", "k" * (MAX_KEY_LENGTH + 1)):
            for name, call in _calls(store, bad):
                _raises(ConfigError, call, what=f"{name}({bad!r:.20})")
        longest = "k" * MAX_KEY_LENGTH
        _eq(longest, store.set(longest, 1).key, "a key of MAX_KEY_LENGTH characters")


def check_bad_arguments(make_store: StoreFactory, clock: FakeClock) -> None:
    """Bad ttl, amount, prefix or limit values raise ConfigError before writing anything."""
    with _fresh(make_store) as store:
        for ttl in (0, -1, math.nan, math.inf, "10", True):
            for name, call in _calls(store, "k")[1:]:
                if name != "delete":
                    _raises(ConfigError, call, ttl=ttl, what=f"{name}(ttl={ttl!r})")
        for amount in ("1", 1.5, True, None):
            _raises(ConfigError, store.incr, "k", amount, what=f"incr(amount={amount!r})")
        for prefix in (None, 1, b"a"):
            _raises(ConfigError, store.scan, prefix, what=f"scan({prefix!r})")
        for limit in (-1, 1.5, True, "2"):
            _raises(ConfigError, store.scan, "", limit=limit, what=f"scan(limit={limit!r})")
        _eq(None, store.get("k"), "nothing written")


def check_closed(make_store: StoreFactory, clock: FakeClock) -> None:
    """After close(), every operation raises StoreUnavailableError; closing again is harmless."""
    store = make_store()
    store.set("k", 1)
    store.close()
    calls: list[tuple[str, Callable[..., object]]] = [*_calls(store, "k"), ("scan", functools.partial(store.scan, ""))]
    for name, call in calls:
        _raises(StoreUnavailableError, call, what=f"{name}() on a closed store")
    store.close()


def check_now_follows_clock(make_store: StoreFactory, clock: FakeClock) -> None:
    """The store's now() follows the library clock, moved by the fake clock's advance()."""
    with _fresh(make_store) as store:
        before = store.now()
        _true(abs(before - clock.time()) <= SLACK, f"now() {before} is the clock's time {clock.time()}")
        clock.advance(3600)
        _true(abs(store.now() - before - 3600) <= SLACK, "now() moved with advance(3600)")


# -- concurrency ------------------------------------------------------------------------------------

THREADS = 4


def _cas_increments(store: Any, key: str, count: int) -> int:
    """Add 1 to the int at *key* *count* times by get + compare_and_set; return how many CAS lost a race."""
    conflicts = 0
    for _ in range(count):
        while True:
            record = store.get(key)
            if store.compare_and_set(key, record.value + 1, version=record.version) is not None:
                break
            conflicts += 1
    return conflicts


def _in_threads(target: Callable[[int], T], threads: int = THREADS) -> list[T]:
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    _true(not any(w.is_alive() for w in workers), "threads finished within 60 s")
    if errors:
        raise errors[0]
    return results


def check_thread_race_compare_and_set(make_store: StoreFactory, clock: FakeClock) -> None:
    """Threads doing get + compare_and_set increments on one key lose no update."""
    with _fresh(make_store) as store:
        store.set("counter", 0)
        _in_threads(lambda _: _cas_increments(store, "counter", 100))
        _eq(THREADS * 100, store.get("counter").value, "counter after the CAS race")


def check_thread_race_put_if_absent_and_incr(make_store: StoreFactory, clock: FakeClock) -> None:
    """Racing threads: exactly one put_if_absent creates the key; incr hands out every value once."""
    with _fresh(make_store) as store:
        puts = _in_threads(lambda i: store.put_if_absent("claim", i))
        _eq(1, sum(created for _, created in puts), "creators among racing put_if_absent")
        _eq(1, len({record for record, _ in puts}), "every racer sees the same record")
        tokens = _in_threads(lambda _: [store.incr("fence") for _ in range(50)])
        _eq(list(range(1, THREADS * 50 + 1)), sorted(t for ts in tokens for t in ts), "incr results")


async def acheck_task_race(make_store: StoreFactory, clock: FakeClock) -> None:
    """Tasks on one event loop: one aput_if_absent creates the key; aincr hands out every value once."""
    store = make_store()
    try:
        puts = await asyncio.gather(*(store.aput_if_absent("claim", i) for i in range(20)))
        _eq(1, sum(created for _, created in puts), "creators among racing aput_if_absent")
        tokens = await asyncio.gather(*(store.aincr("fence") for _ in range(50)))
        _eq(list(range(1, 51)), sorted(tokens), "aincr results")
        _eq(50, (await store.aget("fence")).value, "counter after the race")
    finally:
        await store.aclose()


# -- the runner -----------------------------------------------------------------------------------------


class _Awaited:
    """A blocking view of a store's async twin: each method awaits its ``a``-method on a private loop."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._loop = asyncio.new_event_loop()

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wrap() -> T:
            return await awaitable

        if self._loop.is_closed():  # used after close(): the store must say it is closed, not the loop
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(wrap())

    def now(self) -> float:
        return self._run(self._store.anow())

    def get(self, key: str) -> Record | None:
        return self._run(self._store.aget(key))

    def put_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> tuple[Record, bool]:
        return self._run(self._store.aput_if_absent(key, value, ttl=ttl))

    def compare_and_set(self, key: str, value: Any, *, version: int, ttl: float | None = None) -> Record | None:
        return self._run(self._store.acompare_and_set(key, value, version=version, ttl=ttl))

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> Record:
        return self._run(self._store.aset(key, value, ttl=ttl))

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return self._run(self._store.adelete(key, version=version))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self._run(self._store.aincr(key, amount, ttl=ttl))

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        return self._run(self._store.ascan(prefix, limit=limit))

    def close(self) -> None:
        try:
            self._run(self._store.aclose())
        finally:
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()


CHECKS: tuple[Check, ...] = tuple(
    check
    for name, check in sorted(globals().items())
    if name.startswith("check_") and "thread_race" not in name and callable(check)
)
"""Checks that run on the blocking methods and again on the async twins."""
THREAD_CHECKS: tuple[Check, ...] = (check_thread_race_compare_and_set, check_thread_race_put_if_absent_and_incr)
"""Checks that race threads on one store (blocking methods only)."""
ASYNC_CHECKS: tuple[AsyncCheck, ...] = (acheck_task_race,)
"""Coroutine checks that race tasks on one event loop."""


@dataclass(frozen=True)
class Case:
    """One check in one mode; `run` runs it under a fresh, installed `FakeClock`."""

    check: Callable[[StoreFactory, FakeClock], Any]
    mode: Mode

    @property
    def id(self) -> str:
        return f"{self.check.__name__.removeprefix('check_').removeprefix('acheck_')}-{self.mode}"

    def run(self, make_store: StoreFactory) -> None:
        clock = FakeClock()
        with installed(clock):
            if asyncio.iscoroutinefunction(self.check):
                asyncio.run(self.check(make_store, clock))
            elif self.mode == "async":
                self.check(lambda: _Awaited(make_store()), clock)
            else:
                self.check(make_store, clock)


def cases(modes: Sequence[Mode] = ("sync", "async")) -> list[Case]:
    """Every check of the contract, in each of *modes* it applies to."""
    out = [Case(check, mode) for mode in modes for check in CHECKS]
    if "sync" in modes:
        out += [Case(check, "sync") for check in THREAD_CHECKS]
    if "async" in modes:
        out += [Case(check, "async") for check in ASYNC_CHECKS]
    return out


def check_store(make_store: StoreFactory, *, modes: Sequence[Mode] = ("sync", "async")) -> None:
    """Run the store conformance suite against the stores *make_store* returns.

    Every check runs under a fresh `FakeClock` installed as the library clock, so the
    store must read its time from the library clock (or, for a server-side clock, add
    `reliable._internal._clock.skew`). Each check closes the stores it makes.

    >>> from reliable.stores.memory import MemoryStore
    >>> check_store(MemoryStore)

    Args:
        make_store: Returns a new, empty store at each call.
        modes: ``"sync"`` checks the blocking methods (and races threads), ``"async"``
            the ``a``-twins (and races tasks). Drop ``"async"`` for a blocking-only store.

    Raises:
        ConfigError: *modes* names something else.
        AssertionError: a check failed; the message names the check, the chained
            exception says what differed.

    .. versionadded:: 0.1.0
    """
    unknown = set(modes) - {"sync", "async"}
    if unknown or not modes:
        msg = f"modes={modes!r} is invalid; pass a non-empty subset of ('sync', 'async')"
        raise ConfigError(msg, parameter="modes", value=modes)
    for case in cases(modes):
        try:
            case.run(make_store)
        except Exception as exc:
            raise AssertionError(f"store contract check {case.id!r} failed: {exc}") from exc


# -- processes ---------------------------------------------------------------------------------------------


def _process_worker(url: str, key: str, count: int, barrier: Any) -> None:
    from ..stores import open as open_store

    store = open_store(url)
    try:
        barrier.wait(timeout=60)
        _cas_increments(store, key, count)
    finally:
        store.close()


def race_processes(url: str, *, processes: int = 4, increments: int = 500, timeout: float = 120.0) -> int:
    """Race *processes* spawned processes, each doing *increments* CAS increments of one key, and return the total.

    Each child opens the store by *url* with `reliable.stores.open`; they start together
    behind a barrier. Raises `AssertionError` if a child fails or the race outlives *timeout*.
    """
    import multiprocessing

    from ..stores import open as open_store

    key = "race:counter"
    store = open_store(url)
    try:
        store.set(key, 0)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        children = [
            context.Process(target=_process_worker, args=(url, key, increments, barrier), daemon=True)
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(timeout=timeout)
        stuck = [child for child in children if child.is_alive()]
        for child in stuck:
            child.kill()
        _eq([], [child.pid for child in stuck], f"children still running after {timeout}s")
        _eq([0] * processes, [child.exitcode for child in children], "children's exit codes")
        total: int = store.get(key).value
        return total
    finally:
        store.close()
