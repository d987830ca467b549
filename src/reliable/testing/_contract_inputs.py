"""Store contract checks of what goes in and comes out: scans, values, bad keys and arguments, lifecycle.

Every ``check_*`` function here runs on the blocking methods and on the async twins
(`reliable.testing._contract.CHECKS` collects them by name).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from .._errors import ConfigError, StoreUnavailableError
from ..stores._codec import MAX_KEY_LENGTH
from ._contract_base import SLACK, StoreFactory, _eq, _fresh, _raises, _true
from ._fake_clock import FakeClock

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
    """Bad ttl, amount, prefix, limit or version values raise ConfigError before writing anything."""
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
        record, _ = store.put_if_absent("k", b"v")
        for version in (True, "1", 1.0, None):
            what = f"compare_and_set(version={version!r})"
            _raises(ConfigError, store.compare_and_set, "k", b"w", version=version, what=what)
            if version is not None:
                _raises(ConfigError, store.delete, "k", version=version, what=f"delete(version={version!r})")
        _eq(record, store.get("k"), "a bad version changes nothing")


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
