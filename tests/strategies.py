"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STORE_KEYS = ["a", "a:1", "a:2", "a:10", "b", "b:1", "\u00e9:1"]
"""A few keys that share prefixes, so scans, collisions and recreation happen often."""

store_keys = st.sampled_from(STORE_KEYS)
store_prefixes = st.sampled_from(["", "a", "a:", "a:1", "b", "\u00e9", "c"])

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)
"""Values JSON round-trips exactly (no tuples, no NaN)."""

store_values = json_values | st.binary(max_size=16)
"""Anything a store accepts and gives back unchanged: bytes or JSON values."""

counter_amounts = st.integers(min_value=-5, max_value=5)

ttls = st.none() | st.sampled_from([1.5, 3.5, 7.5])
"""Optional TTLs ending half-way between whole seconds, so whole-second clock moves never land on an expiry."""

clock_moves = st.sampled_from([1, 2, 4, 8])
"""Whole seconds to advance the fake clock by."""
