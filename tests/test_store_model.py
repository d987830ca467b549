"""Every backend behaves like a plain dict with versions and expiry, under random operations and clock moves."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from backends import Backend
from reliable import StoreError
from reliable.stores import Record
from reliable.testing import FakeClock, installed
from reliable.testing._contract import SLACK, _Awaited
from strategies import clock_moves, counter_amounts, store_keys, store_prefixes, store_values, ttls


@dataclass
class Entry:
    value: Any
    version: int
    expires_at: float | None


def _is_counter(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class StoreMachine(RuleBasedStateMachine):
    """A store against a dict model. Subclassed per test with `make_store` and `clock` set."""

    make_store: Callable[[], Any]
    clock: FakeClock

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.model: dict[str, Entry] = {}
        self.seen: list[int] = [0]

    def teardown(self) -> None:
        self.store.close()

    # -- model helpers ---------------------------------------------------------------

    def live(self, key: str) -> Entry | None:
        entry = self.model.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= self.clock.time():
            del self.model[key]
            return None
        return entry

    def wrote(self, record: Record, ttl: float | None, *, kept: Entry | None = None) -> None:
        """Check a successful write's record (its expiry from *ttl*, or *kept*'s) and remember it."""
        assert record.version > max(self.seen), "versions grow with every write"
        if kept is not None:
            assert kept.expires_at == record.expires_at
        elif ttl is None:
            assert record.expires_at is None
        else:
            assert record.expires_at is not None
            assert abs(self.clock.time() + ttl - record.expires_at) <= SLACK
        self.seen.append(record.version)
        self.model[record.key] = Entry(record.value, record.version, record.expires_at)

    def expected(self, key: str) -> Record | None:
        entry = self.live(key)
        return None if entry is None else Record(key, entry.value, entry.version, entry.expires_at)

    # -- rules -------------------------------------------------------------------------

    @rule(key=store_keys)
    def get(self, key: str) -> None:
        assert self.expected(key) == self.store.get(key)

    @rule(key=store_keys, value=store_values, ttl=ttls)
    def put_if_absent(self, key: str, value: Any, ttl: float | None) -> None:
        before = self.expected(key)

        record, created = self.store.put_if_absent(key, value, ttl=ttl)

        assert (before is None) == created
        if created:
            assert value == record.value
            self.wrote(record, ttl)
        else:
            assert before == record

    @rule(key=store_keys, value=store_values, ttl=ttls, current=st.booleans(), stale=st.integers(0, 10))
    def compare_and_set(self, key: str, value: Any, ttl: float | None, current: bool, stale: int) -> None:
        before = self.expected(key)
        version = before.version if current and before is not None else self.seen[stale % len(self.seen)]
        succeeds = before is not None and before.version == version

        record = self.store.compare_and_set(key, value, version=version, ttl=ttl)

        assert succeeds == (record is not None)
        if record is not None:
            assert value == record.value
            self.wrote(record, ttl)

    @rule(key=store_keys, value=store_values, ttl=ttls)
    def set(self, key: str, value: Any, ttl: float | None) -> None:
        record = self.store.set(key, value, ttl=ttl)

        assert value == record.value
        self.wrote(record, ttl)

    @rule(key=store_keys, how=st.sampled_from(["any", "current", "stale"]), stale=st.integers(0, 10))
    def delete(self, key: str, how: str, stale: int) -> None:
        before = self.expected(key)
        if how == "any":
            version = None
        elif how == "current" and before is not None:
            version = before.version
        else:
            version = self.seen[stale % len(self.seen)]
        succeeds = before is not None and version in (None, before.version)

        deleted = self.store.delete(key, version=version)

        assert succeeds == deleted
        if deleted:
            del self.model[key]

    @rule(key=store_keys, amount=counter_amounts, ttl=ttls)
    def incr(self, key: str, amount: int, ttl: float | None) -> None:
        entry = self.live(key)
        if entry is not None and not _is_counter(entry.value):
            with pytest.raises(StoreError):
                self.store.incr(key, amount, ttl=ttl)
            return

        total = self.store.incr(key, amount, ttl=ttl)

        assert (0 if entry is None else entry.value) + amount == total
        record = self.store.get(key)
        assert total == record.value
        self.wrote(record, ttl, kept=entry)

    @rule(prefix=store_prefixes, limit=st.none() | st.integers(0, 3))
    def scan(self, prefix: str, limit: int | None) -> None:
        live = [self.expected(key) for key in sorted(self.model) if key.startswith(prefix)]
        expected = [record for record in live if record is not None][:limit]

        assert expected == self.store.scan(prefix, limit=limit)

    @rule(seconds=clock_moves)
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def now_is_the_clock(self) -> None:
        assert abs(self.clock.time() - self.store.now()) <= SLACK


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_store_behaves_like_the_model(backend: Backend, tmp_path: Path, mode: str) -> None:
    """Random sequences of every operation and clock moves give the results a dict model predicts."""
    counter = itertools.count()
    clock = FakeClock(start=1_000_000.0)

    def make_store() -> Any:
        directory = tmp_path / f"store-{next(counter)}"
        directory.mkdir()
        store: Any = backend.make(directory)
        return _Awaited(store) if mode == "async" else store  # the async twins behind a blocking view

    machine = type("Machine", (StoreMachine,), {"make_store": staticmethod(make_store), "clock": clock})
    with installed(clock):
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=40,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            ),
        )
