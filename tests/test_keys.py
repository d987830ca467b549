"""Idempotency keys: canonical JSON of arguments, binding through the signature, hashing."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from reliable._keys import MAX_KEY, PREFIX, Binder, canonical, digest, store_key

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


def shuffled(value: Any) -> Any:
    """The same value with every dict's insertion order reversed."""
    if isinstance(value, dict):
        return {k: shuffled(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [shuffled(v) for v in value]
    return value


@given(json_values)
def test_canonical_ignores_dict_order(value: Any) -> None:
    """Dictionaries with the same items give the same text whatever their insertion order."""
    assert canonical(value) == canonical(shuffled(copy.deepcopy(value)))


@given(json_values, json_values)
def test_canonical_is_injective_on_plain_data(a: Any, b: Any) -> None:
    """Different plain values (other than int/float/bool look-alikes) never share a text."""
    if canonical(a) == canonical(b):
        assert json.loads(canonical(a)) == json.loads(canonical(b))
        assert a == b


@given(json_values)
def test_canonical_is_compact_json(value: Any) -> None:
    """The text is valid JSON with no whitespace between tokens (plain data, no ``$`` keys, encodes as itself)."""
    assume("$" not in json.dumps(value))
    text = canonical(value)

    assert value == json.loads(text)
    assert text == json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@given(st.sets(st.integers(), max_size=10))
def test_sets_are_sorted(items: set[int]) -> None:
    """A set's text does not depend on its iteration order, and equals the frozenset's."""
    assert canonical(items) == canonical(frozenset(sorted(items, reverse=True)))


class Tier(enum.Enum):
    GOLD = "g"


@dataclasses.dataclass
class Order:
    id: int
    tags: set[str]


class Model:
    def model_dump(self) -> dict[str, Any]:
        return {"a": 1}


TAGGED = [
    (uuid.UUID(int=1), {"$uuid": "00000000-0000-0000-0000-000000000001"}),
    (dt.datetime(2024, 1, 1, 12), {"$datetime": "2024-01-01T12:00:00"}),
    (dt.date(2024, 1, 2), {"$date": "2024-01-02"}),
    (dt.time(3, 4), {"$time": "03:04:00"}),
    (dt.timedelta(days=1, seconds=2), {"$timedelta": [1, 2, 0]}),
    (Decimal("1.50"), {"$decimal": "1.5"}),
    (Tier.GOLD, {"$enum": f"{__name__}.Tier", "name": "GOLD"}),
    (PurePosixPath("/a/b"), {"$path": "/a/b"}),
    (b"\x00", {"$bytes": "AA=="}),
    (float("nan"), {"$float": "nan"}),
    ({"$uuid": "x"}, {"$dict": [["$uuid", "x"]]}),
    ({1: "a"}, {"$dict": [[1, "a"]]}),
    (Order(1, {"b", "a"}), {"$dataclass": f"{__name__}.Order", "fields": {"id": 1, "tags": {"$set": ["a", "b"]}}}),
    (Model(), {"$model": f"{__name__}.Model", "data": {"a": 1}}),
]


@pytest.mark.parametrize(("value", "tree"), TAGGED, ids=[type(v).__name__ for v, _ in TAGGED])
def test_tagged_encodings(value: Any, tree: Any) -> None:
    """Non-JSON types have deterministic tagged encodings that never collide with plain strings."""
    assert json.dumps(tree, separators=(",", ":"), sort_keys=True) == canonical(value)


def test_aware_datetimes_compare_in_utc() -> None:
    """Equal aware datetimes in different zones give the same text; naive ones stay distinct."""
    utc = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)
    paris = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))

    assert canonical(utc) == canonical(paris)
    assert canonical(utc) != canonical(utc.replace(tzinfo=None))


def test_list_and_tuple_encode_alike_but_strings_differ_from_numbers() -> None:
    """A tuple and a list with the same items share a text; "1" and 1 do not."""
    assert canonical((1, "a")) == canonical([1, "a"])
    assert canonical("1") != canonical(1)


def test_path_flavours_encode_alike() -> None:
    """A concrete Path and a PurePosixPath naming the same path share a text."""
    assert canonical(Path("/tmp/x")) == canonical(PurePosixPath("/tmp/x"))


def test_uncanonical_value_raises_type_error_unless_lenient() -> None:
    """An object without a canonical form raises TypeError; lenient mode encodes its type name."""
    with pytest.raises(TypeError, match="no canonical form"):
        canonical({"conn": object()})

    assert '{"conn":{"$opaque":"builtins.object"}}' == canonical({"conn": object()}, lenient=True)


def test_canonical_is_the_same_in_another_process() -> None:
    """Texts and hashes do not depend on the process (no PYTHONHASHSEED, no id())."""
    value = {"s": {3, 1, 2}, "d": {"b": 1, "a": 2}, "u": uuid.UUID(int=5)}
    code = (
        "import uuid; from reliable._keys import canonical, digest; "
        "print(digest(canonical({'s': {3, 1, 2}, 'd': {'b': 1, 'a': 2}, 'u': uuid.UUID(int=5)})))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"}
    )

    assert digest(canonical(value)) == out.stdout.strip()


def f(a: int, b: int = 2, *rest: int, c: int = 3, **extra: int) -> None: ...


def g(a: int, b: int) -> None: ...


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "bound"),
    [
        (g, (1, 2), {}, {"a": 1, "b": 2}),
        (g, (1,), {"b": 2}, {"a": 1, "b": 2}),
        (g, (), {"b": 2, "a": 1}, {"a": 1, "b": 2}),
        (f, (1,), {}, {"a": 1, "b": 2, "rest": (), "c": 3, "extra": {}}),
        (f, (1, 5, 6), {"z": 9}, {"a": 1, "b": 5, "rest": (6,), "c": 3, "extra": {"z": 9}}),
    ],
)
def test_binder(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], bound: dict[str, Any]) -> None:
    """Arguments bind by parameter name with defaults applied, whatever way they were passed."""
    assert bound == Binder(fn).bind(args, kwargs)


def test_binder_rejects_what_the_function_would() -> None:
    """Arguments the function would refuse raise TypeError, as calling it would."""
    with pytest.raises(TypeError):
        Binder(g).bind((1, 2, 3), {})


@given(st.text(min_size=1, max_size=3000), st.text(min_size=1, max_size=300))
def test_store_keys_are_short_and_stable(key: str, namespace: str) -> None:
    """Store keys never exceed MAX_KEY characters, keep short keys readable, and differ when the inputs differ."""
    made = store_key(namespace, key)

    assert len(made) <= MAX_KEY
    assert made.startswith(PREFIX)
    assert made == store_key(namespace, key)
    assert made != store_key(namespace, key + "x")
    if len(PREFIX) + len(namespace) + 1 + len(key) <= MAX_KEY:
        assert f"{PREFIX}{namespace}:{key}" == made


class Label(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


def test_scalar_subclasses_encode_as_the_scalar() -> None:
    """Subclasses of str, int and float (not enums) encode like the plain value."""
    assert canonical(["a", 1, 0.5]) == canonical([Label("a"), Count(1), Ratio(0.5)])
