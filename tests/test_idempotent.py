"""`reliable.idempotent`: one execution per key, replays, keys, fingerprints, errors and results, on every store."""

# ruff: noqa: F811  (pytest fixtures imported from test_idempotent_support are redefined as parameters)

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import uuid
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import pytest

import reliable
from reliable import _idempotency_core as core
from reliable import _idempotency_local as local
from reliable._errors import IdempotencyConflictError
from reliable.stores import Store
from reliable.testing import FakeClock
from test_idempotent_support import Counting, _close_loops, clock, events, idem, mode, names  # noqa: F401


@dataclasses.dataclass(frozen=True)
class Receipt:
    order: int
    amount: Decimal
    at: dt.datetime
    tags: frozenset[str] = frozenset()


class Color(enum.Enum):
    RED = "red"


class Point(NamedTuple):
    x: int
    y: int


class Model:
    """Shaped like a pydantic v2 model: ``model_dump()`` and ``model_validate()``."""

    def __init__(self, name: str, when: dt.date) -> None:
        self.name, self.when = name, when

    def model_dump(self) -> dict[str, Any]:
        return {"name": self.name, "when": self.when}

    @classmethod
    def model_validate(cls, data: dict[str, Any]) -> Model:
        return cls(**data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and (self.name, self.when) == (other.name, other.when)

    __hash__ = None  # type: ignore[assignment]  # mutable, like pydantic models


class Opaque:
    """Not serializable by the JSON serializer."""


# -- once per key -----------------------------------------------------------------------------


def test_second_call_replays_without_running(store: Store, mode: str) -> None:
    """The first call runs the function; a second call with the same arguments returns the stored result."""
    calls: list[int] = []

    def charge(order: int) -> str:
        calls.append(order)
        return f"charged {order}"

    charged = idem(mode, charge, store=store)

    first, second = charged(7), charged(7)

    assert ("charged 7", "charged 7", [7]) == (first, second, calls)


def test_arguments_bind_through_the_signature(store: Store, mode: str) -> None:
    """f(1, b=2), f(a=1, b=2) and f(1) (default b=2) are the same call, so the function runs once."""
    calls: list[tuple[int, int]] = []

    def f(a: int, b: int = 2) -> int:
        calls.append((a, b))
        return a + b

    g = idem(mode, f, store=store)

    results = [g(1, b=2), g(a=1, b=2), g(1), g(1, 2)]

    assert ([3, 3, 3, 3], [(1, 2)]) == (results, calls)


def test_different_arguments_run_separately(store: Store, mode: str) -> None:
    """Calls with different arguments have different keys and each runs once."""
    calls: list[int] = []

    def f(n: int) -> int:
        calls.append(n)
        return n * 10

    g = idem(mode, f, store=store)

    results = [g(1), g(2), g(1), g(2)]

    assert ([10, 20, 10, 20], [1, 2]) == (results, calls)


def test_round_trips_claim_complete_and_one_read(store: Store, mode: str) -> None:
    """A first call costs one put_if_absent and one compare_and_set; a replay costs one read.

    The process that completed a key reads it with get (no claim to build); a key completed by
    someone else is found by the claim itself.
    """
    counting = Counting(store)
    g = idem(mode, lambda n: n, store=counting, name="rt")
    g(1)
    first, counting.ops = counting.ops, []
    g(1)
    replay, counting.ops = counting.ops, []
    local._settled.clear()  # as in another process: the key was completed elsewhere
    g(1)

    assert (["put_if_absent", "compare_and_set"], ["get"], ["put_if_absent"]) == (first, replay, counting.ops)


def test_settled_key_that_expired_is_claimed_again(store: Store, mode: str, clock: FakeClock) -> None:
    """A key this process saw completed but whose record is gone costs one read more, then runs again."""
    calls: list[int] = []
    counting = Counting(store)
    g = idem(mode, lambda n: calls.append(n), store=counting, ttl="1h", name="gone")
    g(1)
    clock.advance(3601)
    counting.ops = []

    g(1)
    g(1)

    assert ([1, 1], ["get", "put_if_absent", "compare_and_set", "get"]) == (calls, counting.ops)


def test_settled_key_with_other_arguments_is_a_conflict(store: Store, mode: str) -> None:
    """The read-first replay checks the fingerprint like the claim does."""
    g = idem(mode, lambda n, extra=0: n, store=store, key=lambda n, extra=0: str(n), name="fp")
    g(1)

    with pytest.raises(IdempotencyConflictError):
        g(1, extra=2)


def test_ttl_expiry_allows_a_new_run(store: Store, mode: str, clock: FakeClock) -> None:
    """After ttl, the completed record is gone and the function runs again."""
    calls: list[int] = []
    g = idem(mode, lambda n: calls.append(n), store=store, ttl="1h", name="ttl")

    g(1)
    clock.advance(3599)
    g(1)
    clock.advance(2)
    g(1)

    assert [1, 1] == calls


def test_ttl_none_keeps_the_record(store: Store, mode: str, clock: FakeClock) -> None:
    """ttl=None keeps the completed record forever."""
    calls: list[int] = []
    g = idem(mode, lambda n: calls.append(n), store=store, ttl=None, name="forever")

    g(1)
    clock.advance("3650d")
    g(1)

    assert [1] == calls


def test_name_pins_the_namespace(store: Store, mode: str) -> None:
    """Two functions with the same name= share records: the second replays the first's result."""
    first = idem(mode, lambda n: "first", store=store, name="pinned")
    second = idem(mode, lambda n: "second", store=store, name="pinned")

    assert ("first", "first") == (first(1), second(1))


def test_default_namespace_is_module_and_qualname(store: Store) -> None:
    """Without name=, the key starts with the function's module and qualified name."""
    counting = Counting(store)

    @reliable.idempotent(store=counting)
    def namespaced(n: int) -> int:
        return n

    namespaced(1)

    key = store.scan("idempotent:")[0].key
    assert key.startswith(f"idempotent:{__name__}.test_default_namespace_is_module_and_qualname.<locals>.namespaced:")


def test_bare_decorator(store: Store) -> None:
    """@reliable.idempotent without parentheses uses the defaults (the configured store)."""
    calls: list[int] = []
    with reliable._config.configured(store=store):

        @reliable.idempotent
        def bare(n: int) -> int:
            calls.append(n)
            return n

        results = [bare(1), bare(1)]

    assert ([1, 1], [1]) == (results, calls)


# -- keys --------------------------------------------------------------------------------------


def test_key_callable(store: Store, mode: str) -> None:
    """key= picks what identifies the request; other arguments do not change the key (with fingerprint off)."""
    calls: list[str] = []

    def send(order: dict[str, Any], attempt: int) -> str:
        calls.append(order["id"])
        return order["id"]

    g = idem(mode, send, store=store, key=lambda order, attempt: f"order:{order['id']}", fingerprint=False)

    g({"id": "A"}, 1)
    g({"id": "A"}, 2)

    assert ["A"] == calls
    assert [f"idempotent:{send.__module__}.{send.__qualname__}:order:A"] == [r.key for r in store.scan("idempotent:")]


@pytest.mark.parametrize("returned", [None, ""])
def test_key_returning_none_is_an_error(store: Store, mode: str, returned: Any) -> None:
    """A key callable that returns None or "" raises ConfigError and the function does not run."""
    calls: list[int] = []
    g = idem(mode, lambda n: calls.append(n), store=store, key=lambda n: returned)

    with pytest.raises(reliable.ConfigError, match=r"key= of .* returned") as info:
        g(1)

    assert ("key", [], []) == (info.value.parameter, calls, store.scan("idempotent:"))


def test_key_returning_a_number(store: Store, mode: str) -> None:
    """A key callable may return a number; it is used as its canonical text."""
    g = idem(mode, lambda n: n, store=store, key=lambda n: 42, name="num")

    g(1)

    assert ["idempotent:num:42"] == [r.key for r in store.scan("idempotent:")]


def test_uncanonical_argument_asks_for_key(store: Store, mode: str) -> None:
    """An argument without a canonical form raises ConfigError naming it and telling the user to pass key=."""
    g = idem(mode, lambda conn, n: n, store=store)

    with pytest.raises(reliable.ConfigError, match=r"argument 'conn' .*Opaque.*pass key=") as info:
        g(Opaque(), 1)

    assert "conn" == info.value.argument


def test_long_keys_are_hashed(store: Store, mode: str) -> None:
    """A 5,000-character key works: it is hashed into a store key of at most 250 characters."""
    g = idem(mode, lambda text: len(text), store=store, key=lambda text: text)

    assert (5000, 5000) == (g("x" * 5000), g("x" * 5000))
    assert len(store.scan("idempotent:")[0].key) <= 250


# -- fingerprint -------------------------------------------------------------------------------


def test_same_key_different_arguments_conflict(store: Store, mode: str, events: list[Any]) -> None:
    """The same key with different arguments raises IdempotencyConflictError (Stripe's 422)."""
    g = idem(mode, lambda order, amount: amount, store=store, key=lambda order, amount: order, name="pay")

    g("o1", 100)
    with pytest.raises(reliable.IdempotencyConflictError, match="different arguments"):
        g("o1", 200)

    assert "conflict" in names(events)
    assert "pay" == events[-1].attributes["reliable.operation"]


def test_fingerprint_is_kept_on_completion(store: Store, mode: str) -> None:
    """The completed record keeps the fingerprint, so an identical replay passes (unlike Powertools' Redis layer)."""
    g = idem(mode, lambda order, amount: amount, store=store, key=lambda order, amount: order, name="keep")

    g("o1", 100)
    data = core.parse(store.scan("idempotent:")[0].value)

    assert data is not None
    assert data["status"] == core.COMPLETED
    assert data["fp"]
    assert 100 == g("o1", 100)


def test_fingerprint_off(store: Store, mode: str) -> None:
    """fingerprint=None turns the check off: a different payload replays the first result."""
    g = idem(mode, lambda order, amount: amount, store=store, key=lambda order, amount: order, fingerprint=None)

    assert (100, 100) == (g("o1", 100), g("o1", 200))


def test_fingerprint_callable(store: Store, mode: str) -> None:
    """fingerprint=callable compares only what it returns."""
    g = idem(
        mode,
        lambda order, amount, note: amount,
        store=store,
        key=lambda order, amount, note: order,
        fingerprint=lambda order, amount, note: amount,
    )

    assert 100 == g("o1", 100, "a")
    assert 100 == g("o1", 100, "b")
    with pytest.raises(reliable.IdempotencyConflictError):
        g("o1", 101, "a")


def test_fingerprint_checked_while_in_progress(store: Store, mode: str) -> None:
    """A call that finds an IN_PROGRESS claim for other arguments raises IdempotencyConflictError, not waits."""
    policy = core.Policy("held", None, 60.0, True, (), reliable._serialize.JSONSerializer(), 1000)
    store.put_if_absent("idempotent:held:k", core.claim(policy, core.Call("k", "other-fp", "elsewhere:1:1")), ttl=60)
    g = idem(mode, lambda k, n: n, store=store, key=lambda k, n: k, name="held")

    with pytest.raises(reliable.IdempotencyConflictError, match="in progress"):
        g("k", 1)


# -- exceptions --------------------------------------------------------------------------------


def test_exception_releases_the_key(store: Store, mode: str, events: list[Any]) -> None:
    """An exception releases the claim, so a later call runs again."""
    calls: list[int] = []

    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise ConnectionError("down")
        return n

    g = idem(mode, flaky, store=store)

    with pytest.raises(ConnectionError):
        g(5)
    result = g(5)

    assert (5, [5, 5]) == (result, calls)
    assert "released" in names(events)


class Declined(Exception):
    def __init__(self, code: str, amount: int) -> None:
        super().__init__(code, amount)
        self.code, self.amount = code, amount


def test_cache_errors_are_recorded_and_replayed(store: Store, mode: str) -> None:
    """An exception type listed in cache_errors is stored and re-raised on replay without running again."""
    calls: list[int] = []

    def pay(n: int) -> None:
        calls.append(n)
        raise Declined("card_declined", n)

    g = idem(mode, pay, store=store, cache_errors=(Declined,))

    with pytest.raises(Declined):
        g(9)
    with pytest.raises(Declined) as replayed:
        g(9)

    assert (("card_declined", 9), [9]) == ((replayed.value.code, replayed.value.amount), calls)


def test_cache_errors_not_listed_still_release(store: Store, mode: str) -> None:
    """cache_errors only records the listed types; others release the key."""
    calls: list[int] = []

    def pay(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise KeyError(n)
        return n

    g = idem(mode, pay, store=store, cache_errors=ValueError)

    with pytest.raises(KeyError):
        g(1)

    assert (1, [1, 1]) == (g(1), calls)


# -- results -----------------------------------------------------------------------------------

RESULTS = [
    Receipt(1, Decimal("9.99"), dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc), frozenset({"a"})),
    (1, "two", [3.0, None], {"k": (4,)}),
    {1: "int keys", (2, 3): "tuple key", "$": "dollar"},
    {uuid.UUID(int=7), Color.RED},
    Point(1, 2),
    Model("m", dt.date(2024, 1, 2)),
    [dt.time(1, 2, 3), dt.timedelta(days=1, microseconds=5), PurePosixPath("/tmp/x"), b"\x00\xff", float("inf")],
    None,
    True,
]


@pytest.mark.parametrize("value", RESULTS, ids=lambda v: type(v).__name__)
def test_replay_returns_the_same_type(store: Store, mode: str, value: Any) -> None:
    """A replay returns a value equal to, and of the same type as, the first call's result."""
    g = idem(mode, lambda n: value, store=store, name="types")

    first, replayed = g(1), g(1)

    assert (value, type(value)) == (replayed, type(replayed))
    assert first is value


def test_pickle_serializer_opt_in(store: Store, mode: str) -> None:
    """serializer="pickle" stores any picklable result."""
    g = idem(mode, lambda n: Declined("x", n), store=store, serializer="pickle")

    g(1)
    replayed = g(1)

    assert (Declined, ("x", 1)) == (type(replayed), replayed.args)


def test_custom_serializer(store: Store, mode: str) -> None:
    """A serializer object with dumps/loads is used for results."""

    class Upper:
        def dumps(self, value: Any) -> Any:
            return value.upper()

        def loads(self, data: Any) -> Any:
            return f"<{data}>"

    g = idem(mode, lambda n: "abc", store=store, serializer=Upper())

    assert ("abc", "<ABC>") == (g(1), g(1))


def test_unserializable_result_is_marked_done(store: Store, mode: str, events: list[Any]) -> None:
    """An unserializable result: the caller gets it, the key is COMPLETED (never re-run), and a warning is logged."""
    made: list[Opaque] = []

    def make(n: int) -> Opaque:
        made.append(Opaque())
        return made[-1]

    g = idem(mode, make, store=store)

    first = g(1)
    replayed = g(1)

    data = core.parse(store.scan("idempotent:")[0].value)
    assert (True, None, 1) == (first is made[0], replayed, len(made))
    assert data is not None
    assert data["status"] == core.COMPLETED
    assert "Opaque" in data["unstored"]
    warnings = [e for e in events if e.event == "result_not_stored"]
    assert [logging.WARNING, logging.WARNING] == [e.level for e in warnings]


def test_result_size_limit(store: Store, mode: str) -> None:
    """A result over max_result_bytes is not stored, but the call is marked done."""
    calls: list[int] = []

    def big(n: int) -> str:
        calls.append(n)
        return "x" * 5000

    g = idem(mode, big, store=store, max_result_bytes=1000)

    assert ("x" * 5000, None, [1]) == (g(1), g(1), calls)


# -- bad configuration -------------------------------------------------------------------------

BAD = [
    ({"ttl": -1}, "ttl"),
    ({"ttl": 0}, "ttl"),
    ({"lease": "soon"}, "lease"),
    ({"lease": 0}, "lease"),
    ({"on_in_progress": "skip"}, "on_in_progress"),
    ({"cache_errors": (ValueError, "x")}, "cache_errors"),
    ({"cache_errors": KeyboardInterrupt}, "cache_errors"),
    ({"serializer": "yaml"}, "serializer"),
    ({"max_result_bytes": 0}, "max_result_bytes"),
    ({"key": "order"}, "key"),
    ({"name": ""}, "name"),
    ({"fingerprint": "yes"}, "fingerprint"),
    ({"store": object()}, "store"),
    ({"store": "ftp://x"}, "store"),
]


@pytest.mark.parametrize(("options", "parameter"), BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_settings_raise_config_error_at_decoration(options: dict[str, Any], parameter: str) -> None:
    """Invalid settings raise ConfigError naming the parameter, when the decorator is made."""
    with pytest.raises(reliable.ConfigError) as info:
        reliable.idempotent(**options)

    assert parameter == info.value.parameter
    assert parameter in str(info.value)
