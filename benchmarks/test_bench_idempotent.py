"""What `reliable.idempotent` costs: a first call (new key) and a replay, on MemoryStore and SQLiteStore.

The SQLite groups' baseline is the floor: plain ``sqlite3`` (WAL, ``synchronous=NORMAL``,
autocommit) running the fewest statements such a record needs, without the library:
claim ``INSERT ... ON CONFLICT DO NOTHING``, complete ``UPDATE ... WHERE version = ?``, replay
``SELECT``. Targets (issue 4): within 1.5x of that floor on both paths, and a MemoryStore replay
under 5 us.

Run: ``pytest benchmarks/test_bench_idempotent.py --benchmark-only``.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import reliable
from reliable.stores.memory import MemoryStore
from reliable.stores.sqlite import SQLiteStore

RESULT = {"order": 42, "status": "charged", "amount": "19.99"}
CLAIM = b'{"status":"IN_PROGRESS","owner":"host:1234:1","fp":"0123456789abcdef0123456789abcdef","lease":60.0}'
DONE = (
    b'{"status":"COMPLETED","fp":"0123456789abcdef0123456789abcdef",'
    b'"result":{"order":42,"status":"charged","amount":"19.99"}}'
)


class RawSQLite:
    """The floor: one table, the minimum statements, no library."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(
            "CREATE TABLE records (key TEXT PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL, expires REAL)"
        )
        self.versions = itertools.count(1)

    def claim(self, key: str) -> int:
        version = next(self.versions)
        self.conn.execute(
            "INSERT INTO records (key, value, version, expires) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (key, CLAIM, version, 1e10),
        )
        return version

    def complete(self, key: str, version: int) -> None:
        self.conn.execute(
            "UPDATE records SET value = ?, version = ?, expires = ? WHERE key = ? AND version = ?",
            (DONE, next(self.versions), 2e10, key, version),
        )

    def replay(self, key: str) -> Any:
        return self.conn.execute("SELECT value, version, expires FROM records WHERE key = ?", (key,)).fetchone()


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawSQLite]:
    floor = RawSQLite(tmp_path / "raw.db")
    yield floor
    floor.conn.close()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "state.db")
    yield made
    made.close()


def charge_with(store: Any, **options: Any) -> Callable[[int], dict[str, Any]]:
    @reliable.idempotent(store=store, name="charge", **options)
    def charge(order: int) -> dict[str, Any]:
        return RESULT

    return charge


def _label(store: Any) -> str:
    return type(store).__name__


def test_first_call(benchmark: Any, store: Any) -> None:
    benchmark.group = f"idempotent: first call (new key), {_label(store)}"
    benchmark.extra_info["label"] = f"reliable.idempotent, key=callable, {_label(store)}"
    charge = charge_with(store, key=lambda order: str(order))
    orders = itertools.count()

    benchmark(lambda: charge(next(orders)))


def test_replay(benchmark: Any, store: Any) -> None:
    benchmark.group = f"idempotent: replay, {_label(store)}"
    benchmark.extra_info["label"] = f"reliable.idempotent, key=callable, {_label(store)}"
    charge = charge_with(store, key=lambda order: str(order))
    charge(1)

    result = benchmark(charge, 1)

    assert RESULT == result


def test_replay_default_key(benchmark: Any, store: Any) -> None:
    benchmark.group = f"idempotent: replay, {_label(store)}"
    benchmark.extra_info["label"] = f"reliable.idempotent, key = hash of arguments, {_label(store)}"
    charge = charge_with(store)
    charge(1)

    benchmark(charge, 1)


def test_memory_store_get(benchmark: Any) -> None:
    """The MemoryStore read a replay cannot avoid (reference, not the baseline)."""
    store = MemoryStore()
    store.put_if_absent("idempotent:charge:1", DONE)
    benchmark.group = "idempotent: replay, MemoryStore"
    benchmark.extra_info["label"] = "MemoryStore.put_if_absent on an existing key (the read)"

    benchmark(store.put_if_absent, "idempotent:charge:1", CLAIM, ttl=60.0)


def test_bare_call(benchmark: Any) -> None:
    benchmark.group = "idempotent: replay, MemoryStore"
    benchmark.extra_info["label"] = "bare function call"
    benchmark.extra_info["baseline"] = True

    def charge(order: int) -> dict[str, Any]:
        return RESULT

    benchmark(charge, 1)


def test_floor_first_call(benchmark: Any, raw: RawSQLite) -> None:
    benchmark.group = "idempotent: first call (new key), SQLiteStore"
    benchmark.extra_info["label"] = "raw sqlite3 floor: INSERT ON CONFLICT DO NOTHING + UPDATE WHERE version"
    benchmark.extra_info["baseline"] = True
    keys = (str(n) for n in itertools.count())

    def first(key: str) -> None:
        raw.complete(key, raw.claim(key))

    benchmark(lambda: first(next(keys)))


def test_floor_claim_only(benchmark: Any, raw: RawSQLite) -> None:
    benchmark.group = "idempotent: first call (new key), SQLiteStore"
    benchmark.extra_info["label"] = "raw sqlite3: the claim INSERT alone"
    keys = (str(n) for n in itertools.count())

    benchmark(lambda: raw.claim(next(keys)))


def test_floor_replay(benchmark: Any, raw: RawSQLite) -> None:
    benchmark.group = "idempotent: replay, SQLiteStore"
    benchmark.extra_info["label"] = "raw sqlite3 floor: SELECT"
    benchmark.extra_info["baseline"] = True
    raw.complete("1", raw.claim("1"))

    assert benchmark(raw.replay, "1") is not None
