"""What SQLiteStore promises beyond the store contract: its file, schema, errors, locking, fork and async driver."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliable import ConfigError, StoreError, StoreUnavailableError
from reliable.stores import _codec
from reliable.stores import open as open_store
from reliable.stores import sqlite as sqlite_module
from reliable.stores.sqlite import SCHEMA_VERSION, SQLiteStore
from reliable.testing import FakeClock, installed


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    made = SQLiteStore(path)
    yield made
    made.close()


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=0)


# -- the file ----------------------------------------------------------------------------------


def test_creates_parent_directories_and_uses_wal(tmp_path: Path) -> None:
    """The store creates missing parent directories and puts the file in WAL mode, schema version stamped."""
    path = tmp_path / "a" / "b" / "state.db"

    SQLiteStore(path).close()

    raw = _raw(path)
    assert ("wal", SCHEMA_VERSION) == (
        raw.execute("PRAGMA journal_mode").fetchone()[0],
        raw.execute("PRAGMA user_version").fetchone()[0],
    )


def test_connection_settings(store: SQLiteStore) -> None:
    """The store's connection runs with synchronous=NORMAL and the busy timeout it was given."""
    cursor = store._cursor
    assert cursor is not None

    assert (1, 5000) == (
        cursor.execute("PRAGMA synchronous").fetchone()[0],
        cursor.execute("PRAGMA busy_timeout").fetchone()[0],
    )


def test_relative_path_is_fixed_at_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative path is resolved against the current directory when the store is created."""
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore("rel/state.db")
    monkeypatch.chdir("/")

    store.set("k", 1)
    store.close()

    assert tmp_path / "rel" / "state.db" == store.path
    assert store.path.is_file()


def test_open_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///relative and sqlite:////absolute open SQLiteStores at those paths (SQLAlchemy's convention)."""
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///data/rel.db")
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")
    relative.close()
    absolute.close()

    assert (tmp_path / "data" / "rel.db", tmp_path / "abs.db") == (relative.path, absolute.path)
    assert f"SQLiteStore({str(tmp_path / 'abs.db')!r})" == repr(absolute)


def test_handles_share_data_and_versions(path: Path) -> None:
    """Two stores on one file see each other's writes, and their versions never collide."""
    one, two = SQLiteStore(path), SQLiteStore(path)
    first = one.set("k", "from one")
    second = two.compare_and_set("k", "from two", version=first.version)
    third = one.set("other", 1)
    one.close()
    two.close()

    assert second is not None
    assert [first.version + 1, first.version + 2] == [second.version, third.version]


def test_versions_survive_reopening(path: Path) -> None:
    """The version counter lives in the file: a reopened store continues above the last version."""
    store = SQLiteStore(path)
    last = store.set("k", 1)
    store.delete("k")
    store.close()

    again = SQLiteStore(path)
    created, _ = again.put_if_absent("k", 2)
    again.close()

    assert last.version + 1 == created.version


def test_expired_rows_are_purged_lazily(store: SQLiteStore, path: Path) -> None:
    """Expired rows stay in the file, invisible, until a later write purges them; nothing runs in between."""
    clock = FakeClock()
    with installed(clock):
        for i in range(10):
            store.set(f"old:{i}", i, ttl=1)
        clock.advance(2)
        raw = _raw(path)
        count = "SELECT count(*) FROM reliable_kv WHERE key LIKE 'old:%'"
        before = raw.execute(count).fetchone()[0]
        for i in range(sqlite_module._PURGE_EVERY):
            store.set(f"new:{i}", i)
        after = raw.execute(count).fetchone()[0]

    assert ([], 10, 0) == (store.scan("old:"), before, after)


_SCHEMA_1 = (
    "CREATE TABLE reliable_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE reliable_kv (key TEXT PRIMARY KEY, is_json INTEGER NOT NULL, value BLOB NOT NULL,"
    " version INTEGER NOT NULL, expires_at REAL) WITHOUT ROWID",
    "CREATE INDEX reliable_kv_expires_at ON reliable_kv (expires_at) WHERE expires_at IS NOT NULL",
    "INSERT INTO reliable_meta VALUES ('last_version', 9)",
    "INSERT INTO reliable_kv VALUES ('json', 1, CAST('{\"a\":[1,2]}' AS BLOB), 3, NULL)",
    "INSERT INTO reliable_kv VALUES ('bytes', 0, x'00ff', 7, 4102444800.0)",
    "INSERT INTO reliable_kv VALUES ('expired', 1, CAST('1' AS BLOB), 5, 1.0)",
    "PRAGMA user_version = 1",
)


def test_migrates_a_schema_1_file(path: Path) -> None:
    """A schema-1 file is migrated in place: records and versions kept, new versions above the last one it gave."""
    raw = _raw(path)
    for statement in _SCHEMA_1:  # version 9 was handed out, then its key deleted: 7 is the highest row left
        raw.execute(statement)
    raw.close()

    store = SQLiteStore(path)
    kept = [store.get("json"), store.get("bytes"), store.get("expired")]
    created, _ = store.put_if_absent("new", 1)
    store.close()

    assert [("json", {"a": [1, 2]}, 3, None), ("bytes", b"\x00\xff", 7, 4102444800.0), None] == [
        None if r is None else (r.key, r.value, r.version, r.expires_at) for r in kept
    ]
    assert 10 == created.version
    tables = _raw(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert (SCHEMA_VERSION, [("reliable_kv",)]) == (_raw(path).execute("PRAGMA user_version").fetchone()[0], tables)


def test_migrated_file_refuses_schema_1_writes(path: Path) -> None:
    """After migration, schema 1's counter table is gone, so code still writing schema 1 fails instead of reusing."""
    raw = _raw(path)
    for statement in _SCHEMA_1:
        raw.execute(statement)
    SQLiteStore(path).close()

    with pytest.raises(sqlite3.OperationalError, match="no such table: reliable_meta"):
        raw.execute("UPDATE reliable_meta SET value = 10 WHERE name = 'last_version'")


def test_purge_keeps_the_newest_row(store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A purge never removes the row holding the highest version, even deleted, so that version is never reused."""
    monkeypatch.setattr(sqlite_module, "_PURGE_EVERY", 1)
    store.set("old", 1)
    newest = store.set("newest", 2)
    other = SQLiteStore(path)  # another handle deletes both after this one's last purge
    other.delete("old")
    other.delete("newest")
    other.close()
    assert store._cursor is not None

    store._wrote(store._cursor)  # the purge this handle runs after its next write
    left = [row[0] for row in _raw(path).execute("SELECT version FROM reliable_kv").fetchall()]
    again, created = store.put_if_absent("newest", 3)

    assert ([newest.version], True, newest.version + 1) == (left, created, again.version)


def test_a_failing_purge_does_not_fail_the_write(
    store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge after a committed write is best effort: if it fails, the write still returns its record."""
    monkeypatch.setattr(sqlite_module, "_PURGE_EVERY", 1)
    monkeypatch.setattr(sqlite_module, "_SWEEP_END", "SELECT no_such_column FROM reliable_kv")

    record = store.set("k", 1)

    assert (1, record.version) == (store.get("k").value, store.get("k").version)  # type: ignore[union-attr]


def test_purge_sweeps_the_table_in_batches(store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each purge looks at a bounded batch of rows; successive purges go round the whole table."""
    monkeypatch.setattr(sqlite_module, "_SWEEP", 4)
    monkeypatch.setattr(sqlite_module, "_SWEEP_END", sqlite_module._SWEEP_END.replace("LIMIT 1024", "LIMIT 4"))
    clock = FakeClock()
    with installed(clock):
        for i in range(10):
            store.set(f"old:{i}", i, ttl=1)
        clock.advance(2)
        store.set("live", 1)
        monkeypatch.setattr(sqlite_module, "_PURGE_EVERY", 1)
        assert store._cursor is not None
        counts = []
        for _ in range(4):
            store._wrote(store._cursor)
            counts.append(_raw(path).execute("SELECT count(*) FROM reliable_kv").fetchone()[0])

    assert [7, 3, 1, 1] == counts


@pytest.mark.parametrize(
    "payload",
    [b'{"a":[1,"\xc3\xa9"]}', b'\xef\xbb\xbf{"a":1}', '{"a":1}'.encode("utf-16"), b'"\xed\xa0\x80"', b"1\x00"],
)
def test_decode_matches_json_loads(payload: bytes) -> None:
    """The codec's fast decode gives what json.loads gives for any payload, including BOMs, UTF-16 and surrogates."""
    assert json.loads(payload) == _codec.decode(True, payload)


def test_decode_raises_like_json_loads() -> None:
    """A payload json.loads refuses is refused by decode with the same error type."""
    with pytest.raises(json.JSONDecodeError):
        json.loads(b"{not json")
    with pytest.raises(json.JSONDecodeError):
        _codec.decode(True, b"{not json")


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", ":memory:", 123, None])
def test_bad_path(bad: object) -> None:
    """A path that is not a file path raises ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match="path="):
        SQLiteStore(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, "soon", float("nan")])
def test_bad_busy_timeout(path: Path, bad: object) -> None:
    """An unusable busy_timeout raises ConfigError naming it, before the file is created."""
    with pytest.raises(ConfigError, match="busy_timeout="):
        SQLiteStore(path, busy_timeout=bad)  # type: ignore[arg-type]

    assert not path.exists()


def test_busy_timeout_accepts_durations(path: Path) -> None:
    """busy_timeout takes the library's duration forms, such as '250ms'."""
    store = SQLiteStore(path, busy_timeout="250ms")
    assert store._cursor is not None

    assert 250 == store._cursor.execute("PRAGMA busy_timeout").fetchone()[0]
    store.close()


def test_not_a_database(path: Path) -> None:
    """A file that is not an SQLite database raises StoreUnavailableError naming the path, chained to the cause."""
    path.write_bytes(b"this is not a database" * 100)

    with pytest.raises(StoreUnavailableError, match=str(path)) as info:
        SQLiteStore(path)

    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert str(path) == info.value.path  # type: ignore[attr-defined]


def test_path_is_a_directory(tmp_path: Path) -> None:
    """A directory where the file should be raises StoreUnavailableError."""
    with pytest.raises(StoreUnavailableError, match="opening the file"):
        SQLiteStore(tmp_path)


def test_parent_cannot_be_created(tmp_path: Path) -> None:
    """A parent 'directory' that is a file raises StoreUnavailableError chained to the OSError."""
    (tmp_path / "file").write_text("")

    with pytest.raises(StoreUnavailableError) as info:
        SQLiteStore(tmp_path / "file" / "state.db")

    assert isinstance(info.value.__cause__, OSError)


def test_newer_schema_is_refused(path: Path) -> None:
    """A file stamped with a newer schema raises StoreUnavailableError saying to upgrade, and is left alone."""
    SQLiteStore(path).close()
    _raw(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(StoreUnavailableError, match="upgrade reliable") as info:
        SQLiteStore(path)

    assert SCHEMA_VERSION + 1 == info.value.schema_version  # type: ignore[attr-defined]
    assert SCHEMA_VERSION + 1 == _raw(path).execute("PRAGMA user_version").fetchone()[0]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_lock_held_beyond_busy_timeout(path: Path, mode: str) -> None:
    """A writer's lock held longer than busy_timeout raises StoreUnavailableError naming the path."""
    store = SQLiteStore(path, busy_timeout=0.01)
    holder = _raw(path)
    holder.execute("BEGIN IMMEDIATE")

    with pytest.raises(StoreUnavailableError, match=f"{path}.*database is locked") as info:
        if mode == "sync":
            store.set("k", 1)
        else:
            asyncio.run(store.aset("k", 1))

    holder.execute("ROLLBACK")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert 1 == store.set("k", 1).value  # the store recovers once the lock is free
    store.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_broken_file_surfaces_as_unavailable(store: SQLiteStore, path: Path, mode: str) -> None:
    """An SQLite error other than a lock (here a dropped table) raises StoreUnavailableError naming the call."""
    _raw(path).execute("DROP TABLE reliable_kv")

    with pytest.raises(StoreUnavailableError, match="while running get"):
        if mode == "sync":
            store.get("k")
        else:
            asyncio.run(store.aget("k"))


def test_put_if_absent_loses_a_race_gracefully(store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If another writer creates the key between the lock-free read and the write lock, put returns its record."""
    other = SQLiteStore(path)
    read = store._get

    def read_then_lose_the_race(cursor: sqlite3.Cursor, key: str) -> object:
        found = read(cursor, key)
        other.set(key, "theirs")
        return found

    monkeypatch.setattr(store, "_get", read_then_lose_the_race)

    record, created = store.put_if_absent("k", "mine")
    other.close()

    assert (False, "theirs") == (created, record.value)


def test_failed_operation_rolls_back(store: SQLiteStore) -> None:
    """An operation that fails inside its transaction (incr on text) leaves no transaction open."""
    store.set("k", "text")

    with pytest.raises(StoreError):
        store.incr("k")

    assert store._cursor is not None
    assert not store._cursor.connection.in_transaction
    assert 1 == store.incr("n")


# -- the async driver ------------------------------------------------------------------------------


def test_async_runs_on_the_loop_when_uncontended(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no lock contention, the async twins finish on the event loop without a thread hop."""

    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("asyncio.to_thread was called")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)

    async def main() -> list[object]:
        record, _ = await store.aput_if_absent("k", 1)
        return [await store.aget("k"), await store.aincr("n"), record.value]

    assert 1 == asyncio.run(main())[-1]
    assert store._cursor is not None
    assert 5000 == store._cursor.execute("PRAGMA busy_timeout").fetchone()[0]


def test_async_waits_for_a_lock_in_a_thread(store: SQLiteStore, path: Path) -> None:
    """Under lock contention the async twin waits in a worker thread; the event loop keeps running."""
    holder = _raw(path)
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> tuple[bool, int]:
        task = asyncio.create_task(store.aset("k", 7))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.002)
            ticks += 1
        waiting = not task.done()
        holder.execute("COMMIT")
        record = await task
        return waiting, record.value + ticks

    assert (True, 12) == asyncio.run(main())


def test_async_uses_a_thread_when_another_thread_holds_the_store(store: SQLiteStore) -> None:
    """If another thread of this process is inside the store, the async twin waits in a thread, not on the loop."""

    async def main() -> object:
        store._lock.acquire()
        task = asyncio.create_task(store.aget("k"))
        await asyncio.sleep(0.005)
        waiting = not task.done()
        store._lock.release()
        return waiting, await task

    assert (True, None) == asyncio.run(main())


def test_closed_store_async(store: SQLiteStore) -> None:
    """The async twins of a closed store raise StoreUnavailableError too; aclose is harmless twice."""

    async def main() -> None:
        await store.aclose()
        await store.aclose()
        await store.aget("k")

    with pytest.raises(StoreUnavailableError, match="closed"):
        asyncio.run(main())


# -- processes ----------------------------------------------------------------------------------------


def _incr_in_child(store: SQLiteStore) -> None:
    inherited = store._cursor
    store.incr("forked")
    store.incr("forked")
    assert inherited is not None
    reopened = store._cursor is not inherited
    sys.exit(0 if reopened and inherited.connection in sqlite_module._abandoned else 3)


@pytest.mark.processes
def test_store_reconnects_after_fork(store: SQLiteStore) -> None:
    """A forked child uses the parent's store object through a new connection; the parent's keeps working."""
    store.incr("forked")
    child = multiprocessing.get_context("fork").Process(target=_incr_in_child, args=(store,))

    child.start()
    child.join(timeout=30)

    assert 0 == child.exitcode
    assert 4 == store.incr("forked")


@pytest.mark.processes
def test_fork_while_another_thread_holds_the_store(store: SQLiteStore) -> None:
    """A child forked while a parent thread is inside the store does not inherit that thread's lock."""
    store.incr("forked")
    child = multiprocessing.get_context("fork").Process(target=_incr_in_child, args=(store,))

    with store._lock:
        child.start()
        child.join(timeout=10)
    if child.is_alive():
        child.kill()

    assert 0 == child.exitcode
    assert 4 == store.incr("forked")


def _close_in_child(store: SQLiteStore) -> None:
    inherited = store._cursor
    store.close()
    sys.exit(0 if inherited is not None and inherited.connection in sqlite_module._abandoned else 3)


@pytest.mark.processes
def test_close_in_a_forked_child_leaves_the_parent_alone(store: SQLiteStore) -> None:
    """A child that closes the inherited store does not close, or wait for, what the parent holds."""
    store.set("k", 1)
    child = multiprocessing.get_context("fork").Process(target=_close_in_child, args=(store,))

    with store._lock:
        child.start()
        child.join(timeout=10)
    if child.is_alive():
        child.kill()

    assert 0 == child.exitcode
    assert 1 == store.get("k").value  # type: ignore[union-attr]


@pytest.mark.processes
def test_many_processes_create_one_file_at_once(path: Path) -> None:
    """Six processes opening the same new file at once all succeed; the schema is created once."""
    code = textwrap.dedent(
        f"""
        from reliable.stores.sqlite import SQLiteStore
        store = SQLiteStore({str(path)!r})
        store.incr("opened")
        store.close()
        """
    )
    children = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(6)]
    errors = [child.communicate(timeout=60)[1].decode() for child in children]

    assert [0] * 6 == [child.returncode for child in children], errors
    store = SQLiteStore(path)
    assert 6 == store.get("opened").value  # type: ignore[union-attr]
    store.close()


def test_no_pid_change_keeps_the_connection(store: SQLiteStore) -> None:
    """Without a fork the store keeps its one connection (the fork check is only a pid comparison)."""
    before = store._cursor
    store.set("k", 1)

    assert before is store._cursor
    assert os.getpid() == store._pid


def _open_together(path: str, barrier: object, index: int) -> None:
    barrier.wait(60)  # type: ignore[attr-defined]
    store = SQLiteStore(path)
    store.put_if_absent(f"opened:{index}", index)
    store.close()


@pytest.mark.processes
@pytest.mark.parametrize("round_", range(3))
def test_processes_opening_a_new_file_at_once_all_get_in(tmp_path: Path, round_: int) -> None:
    """Eight processes creating the same new file at one moment all open it and write (no "database is locked")."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(8)
    path = str(tmp_path / f"new-{round_}.db")
    children = [spawn.Process(target=_open_together, args=(path, barrier, i)) for i in range(8)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)

    assert [0] * 8 == [child.exitcode for child in children]
    assert 8 == len(SQLiteStore(path).scan("opened:"))
