"""single_instance: acquire + release of one uncontended lock, side by side with the file locks people use today.

Run: ``pytest benchmarks/test_bench_single_instance.py --benchmark-only``. Every entry takes
and gives back one exclusive, non-blocking lock on a fresh directory:

- raw ``fcntl.flock`` on a descriptor kept open (the floor, and the baseline), and with an
  ``open`` + ``close`` around it (what a lock without a kept descriptor pays);
- ``portalocker.lock`` + ``portalocker.unlock`` on a file object kept open (portalocker's
  primitive, without ``Lock``'s open and close: its flag checks and dispatch over ``flock``);
- the system calls the file backend makes, alone: ``flock``, the deleted-file check, ``pread``
  of the previous token, ``pwrite`` of the holder record, ``flock(LOCK_UN)``;
- ``portalocker.Lock`` and ``filelock.FileLock`` (both open and close the file each time);
- ``reliable.single_instance`` with the file backend (holder metadata and token written
  into the lock file each time), and with the store backend on SQLite (a lease: one
  ``put_if_absent`` to acquire, whose version is the token, one ``delete`` to release; the
  store's shared renewer thread keeps it, so no thread starts or stops per lease), next to
  those two store calls alone (what any lease in that store costs).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import filelock
import portalocker
import pytest

import reliable
from reliable._lock_dir import link_probe
from reliable.stores.sqlite import SQLiteStore

GROUP = "single_instance: acquire + release, uncontended"


def _label(benchmark: Any, label: str, *, baseline: bool = False) -> None:
    benchmark.group = GROUP
    benchmark.extra_info["label"] = label
    if baseline:
        benchmark.extra_info["baseline"] = True


def test_raw_flock_kept_open(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "fcntl.flock, descriptor kept open (floor)", baseline=True)
    fd = os.open(tmp_path / "raw.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def run() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)

    benchmark(run)
    os.close(fd)


def test_raw_flock_open_close(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "fcntl.flock with open + close")
    path = tmp_path / "raw.lock"

    def run() -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    benchmark(run)


def test_portalocker_lock_kept_open(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "portalocker.lock + unlock, file kept open")
    flags = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
    with open(tmp_path / "plk.lock", "a+b") as file:

        def run() -> None:
            portalocker.lock(file, flags)
            portalocker.unlock(file)

        benchmark(run)


def test_file_backend_system_calls(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "the file backend's system calls alone (flock, link check, pread, pwrite, unlock)")
    fd = os.open(tmp_path / "calls.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    linked = link_probe()
    record = b'{"token":1,"since":1700000000.000000,"pid":1,"slot":0,"host":"h","name":"bench"}\n'

    def run() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        linked(fd)
        os.pread(fd, 4096, 0)
        os.pwrite(fd, record, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)

    benchmark(run)
    os.close(fd)


def test_portalocker_lock(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "portalocker.Lock (fail_when_locked)")
    lock = portalocker.Lock(tmp_path / "pl.lock", fail_when_locked=True, timeout=0)

    def run() -> None:
        lock.acquire()
        lock.release()

    benchmark(run)


def test_filelock(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "filelock.FileLock (timeout=0)")
    lock = filelock.FileLock(tmp_path / "fl.lock", timeout=0)

    def run() -> None:
        with lock:
            pass

    benchmark(run)


def test_reliable_file_backend(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "reliable.single_instance, file backend (with metadata)")
    lock = reliable.single_instance("bench", lock_dir=tmp_path, on_conflict="raise")

    def run() -> None:
        with lock:
            pass

    benchmark(run)
    assert reliable.single_instance("bench", lock_dir=tmp_path, on_conflict="raise").acquire().token > 1


def test_reliable_file_backend_decorator(benchmark: Any, tmp_path: Path) -> None:
    _label(benchmark, "reliable.single_instance, file backend, decorated call")

    @reliable.single_instance("bench-fn", lock_dir=tmp_path, on_conflict="raise")
    def job() -> int:
        return 1

    benchmark(job)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    store = SQLiteStore(tmp_path / "state.db")
    yield store
    store.close()


def test_sqlite_store_claim_and_delete(benchmark: Any, sqlite_store: SQLiteStore) -> None:
    _label(benchmark, "SQLiteStore.put_if_absent + delete (the lease's store calls)")
    value = {"name": "bench", "owner": "0123456789abcdef", "pid": 4242, "host": "web1", "since": 1.0, "slot": 0}

    def run() -> None:
        record, _ = sqlite_store.put_if_absent("lock:floor:0", value, ttl=30)
        sqlite_store.delete("lock:floor:0", version=record.version)

    benchmark(run)


def test_reliable_sqlite_lease(benchmark: Any, sqlite_store: SQLiteStore) -> None:
    _label(benchmark, "reliable.single_instance, SQLite lease (store backend)")
    lock = reliable.single_instance("bench", store=sqlite_store, on_conflict="raise", ttl=30)

    def run() -> None:
        with lock:
            pass

    benchmark(run)
