"""Store operations per call: MemoryStore and SQLiteStore next to the raw sqlite3 floor, in one process.

Run: ``pytest benchmarks/test_bench_stores.py --benchmark-only -p no:cacheprovider``

The floor (each group's baseline) runs the SQL that `SQLiteStore` runs, statement for
statement and in the same transactions, with the `sqlite3` module on a file with the same
schema and settings (WAL, ``synchronous=NORMAL``): the lock-free read, then one conditional
``INSERT OR REPLACE`` whose row id is the version (``incr``: a read and the write inside
``BEGIN IMMEDIATE``). It skips what the library
adds around the SQL: argument checks, JSON encoding and decoding (the floor writes a
pre-encoded payload), the clock lookup, `Record` objects, the lock and the fork check.
The ratio is therefore the library's whole overhead over the database work.

"SQLiteStore, bytes values" writes the floor's payload as ``bytes``, which the store keeps
as they are: the gap between it and "SQLiteStore" (a small dict) is the cost of JSON.

Groups: put_if_absent of a new key (a claim), put_if_absent of a live key (a replay),
put_if_absent + compare_and_set (claim then complete), compare_and_set, get, incr.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reliable.stores import sqlite as sql
from reliable.stores.memory import MemoryStore
from reliable.stores.sqlite import SQLiteStore

VALUE = {"state": "done", "result": [1, 2, 3]}
PAYLOAD = b'{"state":"done","result":[1,2,3]}'
TTL = 3600.0

CLAIM = "store: put_if_absent, new key (claim)"
REPLAY = "store: put_if_absent, live key (replay)"
CLAIM_COMPLETE = "store: put_if_absent + compare_and_set (claim, complete)"
CAS = "store: compare_and_set"
GET = "store: get"
INCR = "store: incr"

IMPLEMENTATIONS = ["raw sqlite3 (floor)", "SQLiteStore", "SQLiteStore, bytes values", "MemoryStore"]


class RawFloor:
    """The statements SQLiteStore runs for each operation, issued directly with sqlite3."""

    def __init__(self, path: Path) -> None:
        SQLiteStore(path).close()  # the same schema and journal mode
        self.cursor = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5).cursor()
        self.cursor.execute("PRAGMA synchronous = NORMAL")

    def get(self, key: str) -> Any:
        return self.cursor.execute(sql._GET, (key, time.time())).fetchone()

    def put_if_absent(self, key: str, payload: bytes) -> int:
        cur = self.cursor
        row = cur.execute(sql._GET, (key, time.time())).fetchone()
        if row is not None:
            return int(row[2])
        now = time.time()
        if cur.execute(sql._CLAIM, (key, True, payload, now + TTL, key, now)).rowcount > 0:
            return int(cur.lastrowid or 0)
        return int(cur.execute(sql._GET, (key, now)).fetchone()[2])

    def compare_and_set(self, key: str, payload: bytes, version: int) -> int | None:
        cur = self.cursor
        now = time.time()
        if cur.execute(sql._CAS, (key, True, payload, now + TTL, key, version, now)).rowcount > 0:
            return int(cur.lastrowid or 0)
        return None

    def incr(self, key: str) -> int:
        cur = self.cursor
        cur.execute("BEGIN IMMEDIATE")
        row = cur.execute(sql._GET, (key, time.time())).fetchone()
        total = (int(row[1]) if row is not None else 0) + 1
        cur.execute(sql._SET, (key, True, str(total).encode(), None if row is None else row[3]))
        cur.execute("COMMIT")
        return total

    def close(self) -> None:
        self.cursor.connection.close()


def label(benchmark: Any, group: str, name: str) -> None:
    benchmark.group = group
    benchmark.extra_info["label"] = name
    if name == IMPLEMENTATIONS[0]:
        benchmark.extra_info["baseline"] = True


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    name: str = request.param
    made: Any
    if name.startswith("SQLiteStore"):
        made = SQLiteStore(tmp_path / "state.db")
    elif name == "MemoryStore":
        made = MemoryStore()
    else:
        made = RawFloor(tmp_path / "state.db")
    yield name, made
    made.close()


def _operations(name: str, store: Any) -> dict[str, Callable[[], object]]:
    keys = itertools.count()
    raw = name == IMPLEMENTATIONS[0]
    value, running = (PAYLOAD, b'{"state":"running"}') if "bytes" in name else (VALUE, {"state": "running"})
    if raw:
        version = store.put_if_absent("cas", PAYLOAD)
        store.put_if_absent("live", PAYLOAD)
        store.incr("counter")
    else:
        version = store.put_if_absent("cas", value, ttl=TTL)[0].version
        store.put_if_absent("live", value, ttl=TTL)

    def claim() -> object:
        if raw:
            return store.put_if_absent(f"claim:{next(keys)}", PAYLOAD)
        return store.put_if_absent(f"claim:{next(keys)}", value, ttl=TTL)

    def claim_complete() -> object:
        key = f"job:{next(keys)}"
        if raw:
            return store.compare_and_set(key, PAYLOAD, store.put_if_absent(key, b'{"state":"running"}'))
        record, _ = store.put_if_absent(key, running, ttl=TTL)
        return store.compare_and_set(key, value, version=record.version, ttl=TTL)

    def cas() -> object:
        nonlocal version
        if raw:
            version = store.compare_and_set("cas", PAYLOAD, version)
        else:
            version = store.compare_and_set("cas", value, version=version, ttl=TTL).version
        return version

    if raw:
        replay: Callable[[], object] = lambda: store.put_if_absent("live", PAYLOAD)  # noqa: E731
    else:
        replay = lambda: store.put_if_absent("live", value, ttl=TTL)  # noqa: E731
    return {
        CLAIM: claim,
        REPLAY: replay,
        CLAIM_COMPLETE: claim_complete,
        CAS: cas,
        GET: lambda: store.get("live"),
        INCR: lambda: store.incr("counter"),
    }


@pytest.mark.parametrize("group", [CLAIM, REPLAY, CLAIM_COMPLETE, CAS, GET, INCR])
def test_store_operation(benchmark: Any, impl: tuple[str, Any], group: str) -> None:
    name, store = impl
    if group == INCR and "bytes" in name:
        pytest.skip("incr stores ints; the bytes-values variant is the same")
    label(benchmark, group, name)
    operation = _operations(name, store)[group]

    result = benchmark(operation)

    assert result is not None
