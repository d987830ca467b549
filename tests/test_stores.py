"""The store conformance suite, run on every backend: one test per contract check and mode.

The checks themselves live in `reliable.testing._contract` (shipped as
`reliable.testing.check_store`), so each states its behaviour in its docstring. A new
backend joins by registering a `Backend` in tests/backends.py; nothing here changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import Backend
from reliable import ConfigError
from reliable.stores import Store
from reliable.stores.memory import MemoryStore
from reliable.testing import check_store
from reliable.testing._contract import Case, cases, race_processes

CASES = cases()


@pytest.fixture
def make_store(backend: Backend, tmp_path: Path) -> Callable[[], Store]:
    """A factory of fresh, isolated stores of the current backend (each in its own directory)."""
    counter = itertools.count()

    def make() -> Store:
        directory = tmp_path / f"store-{next(counter)}"
        directory.mkdir()
        return backend.make(directory)

    return make


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_contract(case: Case, make_store: Callable[[], Store]) -> None:
    """The backend satisfies this check of the store contract (see the check's docstring)."""
    case.run(make_store)


def test_contract_covers_sync_async_threads_and_tasks() -> None:
    """Every blocking check also runs on the async twins, and the thread and task races are included."""
    sync = {case.id.removesuffix("-sync") for case in CASES if case.mode == "sync"}
    asynchronous = {case.id.removesuffix("-async") for case in CASES if case.mode == "async"}

    assert {"thread_race_compare_and_set", "thread_race_put_if_absent_and_incr"} == sync - asynchronous
    assert {"task_race"} == asynchronous - sync


@pytest.mark.processes
def test_processes_race_compare_and_set(shared_backend: Backend, tmp_path: Path) -> None:
    """Four spawned processes, each doing 500 get + compare_and_set increments of one key, end at exactly 2000."""
    assert shared_backend.url is not None
    url = shared_backend.url(tmp_path)

    total = race_processes(url, processes=4, increments=500, timeout=120)

    assert 4 * 500 == total


class _ReusesVersions(MemoryStore):
    """A broken store: deleting a key restarts the version counter, so versions are reused (ABA)."""

    def delete(self, key: str, *, version: int | None = None) -> bool:
        deleted = super().delete(key, version=version)
        self._versions = itertools.count(1)
        return deleted


class _BlockingOnly:
    """A store with only the blocking methods (no async twins)."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("a"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_check_store_passes_a_conforming_store() -> None:
    """check_store runs the whole contract and returns quietly for a store that keeps it."""
    check_store(MemoryStore)


def test_check_store_names_the_failed_check() -> None:
    """check_store raises AssertionError naming the check a broken store fails, with the difference chained."""
    with pytest.raises(AssertionError, match="versions_not_reused_after_delete-sync") as info:
        check_store(_ReusesVersions)

    assert isinstance(info.value.__cause__, AssertionError)


def test_check_store_sync_only() -> None:
    """modes=('sync',) checks a store that has no async twins."""
    check_store(_BlockingOnly, modes=("sync",))


@pytest.mark.parametrize("modes", [(), ("sync", "trio"), ("async", "blocking")])
def test_check_store_bad_modes(modes: Any) -> None:
    """Unknown or empty modes raise ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match="modes="):
        check_store(MemoryStore, modes=modes)


def test_record_is_a_frozen_value() -> None:
    """A Record compares and hashes by value, cannot be changed, and survives copy, replace and pickle."""
    import copy
    import dataclasses
    import pickle

    from reliable.stores import Record

    record = Record("k", b"v", 7, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.version = 8  # type: ignore[misc]

    assert (record, hash(record)) == (Record("k", b"v", 7, None), hash(Record("k", b"v", 7, None)))
    assert record == pickle.loads(pickle.dumps(record)) == copy.deepcopy(record)
    assert Record("k", b"v", 8, 1.5) == dataclasses.replace(record, version=8, expires_at=1.5)
    assert "Record(key='k', value=b'v', version=7, expires_at=None)" == repr(record)


def test_memory_store_purges_expired_entries_on_later_writes() -> None:
    """Expired entries leave memory at the next write, a rewritten key keeps its new write; the heap stays bounded."""
    from reliable.stores import memory
    from reliable.testing import FakeClock

    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.put_if_absent("short", b"x", ttl=1)
    kept, _ = store.put_if_absent("kept", b"x", ttl=1)
    store.compare_and_set("kept", b"y", version=kept.version, ttl=100)  # its first expiry must not delete it
    store.incr("counter", ttl=1)
    store.incr("counter")  # same expiry, new version
    clock.advance(2)

    store.set("later", b"z")

    assert ["kept", "later"] == sorted(store._data)
    for n in range(3 * memory._COMPACT_SLACK):
        store.set("same", n, ttl=1000)  # every write of one key pushes an entry; compaction drops the stale ones
    assert len(store._expiries) <= 2 * len(store._data) + memory._COMPACT_SLACK
    assert {"kept", "later", "same"} == set(store._data)
