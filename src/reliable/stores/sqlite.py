"""`SQLiteStore`: the embedded default store, one SQLite file shared by threads and processes on one host."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConfigError, StoreError, StoreUnavailableError
from .._internal import _clock
from .._internal._durations import Duration, seconds
from ._codec import check_amount, check_key, check_limit, check_prefix, check_ttl, check_version, decode, encode
from ._protocol import Record, Value

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")

SCHEMA_VERSION = 2
"""The file layout this code writes, kept in ``PRAGMA user_version``; older files are migrated up in place.

2: a record's version is its rowid, so a write is one statement on one table (1 kept a counter row
that every write updated in the same transaction, and an index on expiry times).
"""

_PURGE_EVERY = 256
"""Every this many writes, a write also deletes the expired rows among the next `_SWEEP` rows of a sweep."""
_SWEEP = 1024
"""How many rows (in version order) one purge looks at; a sweep goes round the table faster than writes grow it."""

_DEAD = float("-inf")
"""The expiry of a deleted row: before every possible time, so it is never live again."""

# Versions: SQLite gives each new row the rowid max(rowid) + 1, and every write inserts a new row (replacing the
# key's old one), so versions grow store-wide, in the same statement as the write. They are never reused because
# the row holding the highest version is never removed without a higher one taking its place: delete() marks a row
# dead instead of removing it, and purges leave the highest row alone. A file migrated from schema 1 gets a dead
# row (key '', which no caller can use) at the last version it handed out, and loses schema 1's counter table, so
# a process still running schema 1's code fails loudly on it instead of writing reused versions.
_SCHEMA = (
    "CREATE TABLE reliable_kv (version INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, is_json INTEGER NOT NULL,"
    " value BLOB NOT NULL, expires_at REAL)",
)
_MIGRATIONS = {
    1: (
        "ALTER TABLE reliable_kv RENAME TO reliable_kv_1",
        _SCHEMA[0],
        "INSERT INTO reliable_kv (version, key, is_json, value, expires_at)"
        " SELECT version, key, is_json, value, expires_at FROM reliable_kv_1",
        "INSERT INTO reliable_kv (version, key, is_json, value, expires_at) SELECT value, '', 0, x'', -9e999"
        " FROM reliable_meta WHERE name = 'last_version'"
        " AND value > (SELECT coalesce(max(version), 0) FROM reliable_kv)",
        "DROP TABLE reliable_kv_1",
        "DROP TABLE reliable_meta",
    )
}
"""The statements that bring a file from each older schema version to the next."""

_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_GET = f"SELECT is_json, value, version, expires_at FROM reliable_kv WHERE key = ? AND {_LIVE}"
# The writes: one statement each (its own transaction); cursor.lastrowid is the version, if rowcount says it wrote.
_INSERT = "INSERT OR REPLACE INTO reliable_kv (key, is_json, value, expires_at)"
_CLAIM = f"{_INSERT} SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM reliable_kv WHERE key = ? AND {_LIVE})"
_CAS = f"{_INSERT} SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM reliable_kv WHERE key = ? AND version = ? AND {_LIVE})"
_SET = f"{_INSERT} VALUES (?, ?, ?, ?)"
_DELETE = f"UPDATE reliable_kv SET expires_at = ? WHERE key = ? AND {_LIVE}"
_DELETE_VERSION = f"UPDATE reliable_kv SET expires_at = ? WHERE key = ? AND version = ? AND {_LIVE}"
_SWEEP_END = (
    "SELECT max(version), count(*) FROM"
    f" (SELECT version FROM reliable_kv WHERE version > ? ORDER BY version LIMIT {_SWEEP})"
)
_PURGE = (
    "DELETE FROM reliable_kv WHERE version > ? AND version <= ? AND expires_at <= ?"
    " AND version < (SELECT max(version) FROM reliable_kv)"
)
_SCAN_ALL = f"SELECT key, is_json, value, version, expires_at FROM reliable_kv WHERE key >= ? AND {_LIVE}"
_SCAN = _SCAN_ALL + " AND key < ? ORDER BY key LIMIT ?"
_SCAN_ALL += " ORDER BY key LIMIT ?"

_abandoned: list[sqlite3.Connection] = []
"""Connections inherited through fork(): never used or closed in the child (SQLite forbids it), only kept."""
_fork_guard = threading.Lock()


def _new_fork_guard() -> None:
    global _fork_guard
    _fork_guard = threading.Lock()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_new_fork_guard)


class SQLiteStore:
    """A `reliable.stores.Store` in one SQLite file, safe across threads and processes on one host.

    The file runs in WAL mode with ``synchronous=NORMAL``: readers never block the
    writer, and a commit survives a crash of the process (not necessarily of the
    machine). Every write is one statement, its own transaction (``incr``, which
    reads, checks and writes, runs in one ``BEGIN IMMEDIATE`` transaction), so
    processes sharing the file serialize on SQLite's lock and wait for it up to
    *busy_timeout*. A record's version is its row id, handed out store-wide by the
    same statement that writes it, so versions only grow and are never reused, even
    across deletes and expiries. Expired and deleted rows are invisible at once and
    purged, a bounded batch every few hundred writes; no thread runs in
    the background. A child process made by ``fork()`` opens its own connection on
    first use. Time comes from the library clock, or from *clock* when given.

    >>> import tempfile, os
    >>> store = SQLiteStore(os.path.join(tempfile.mkdtemp(), "state.db"))
    >>> record, created = store.put_if_absent("job:1", {"state": "running"}, ttl=60)
    >>> created, store.get("job:1").value
    (True, {'state': 'running'})
    >>> store.close()

    Args:
        path: The database file; its parent directories are created. Relative paths
            are resolved against the current directory when the store is created.
        clock: The clock for ``now()`` and TTLs; the library clock when None.
        busy_timeout: How long to wait for another writer's lock before giving up.

    Raises:
        ConfigError: *path* or *busy_timeout* is unusable.
        StoreUnavailableError: the file cannot be created, opened or read, or was
            written by a newer `reliable` (its schema version is higher than `SCHEMA_VERSION`).

    The async twins (``aget``, ``aput_if_absent``, ...) run the operation on the event
    loop when it can finish at once (each takes tens of microseconds; a hop to a worker
    thread costs about 100), with SQLite told not to wait for locks (reads in WAL mode
    never wait); if another thread of this process or another process holds the lock,
    they rerun it in a worker thread (`asyncio.to_thread`) with the full *busy_timeout*,
    so lock contention never blocks the event loop.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, path: str | os.PathLike[str], *, clock: _clock.Clock | None = None, busy_timeout: Duration = 5.0
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path) or os.fspath(path) == ":memory:":
            msg = f"path={path!r} is not a database file path; pass a file path (use MemoryStore for memory)"
            raise ConfigError(msg, parameter="path", value=path)
        self._path = Path(path).absolute()
        self._clock = clock
        self._timeout = seconds(busy_timeout, "busy_timeout")
        self._wait = f"PRAGMA busy_timeout = {int(self._timeout * 1000)}"
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._writes = 0
        self._swept = 0
        self._closed = False
        self._cursor: sqlite3.Cursor | None = None
        self._cursor = self._connect()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The absolute path of the database file."""
        return self._path

    # -- connection ------------------------------------------------------------

    def _unavailable(self, exc: BaseException, doing: str) -> StoreUnavailableError:
        msg = (
            f"SQLite store {str(self._path)!r} is unavailable while {doing}: {exc}; check that the file is a "
            f"readable, writable SQLite database on a local disk, or raise busy_timeout (now {self._timeout}s)"
        )
        return StoreUnavailableError(msg, path=str(self._path), address=f"sqlite:///{self._path}")

    def _connect(self) -> sqlite3.Cursor:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc, "opening the file") from exc
        try:
            cursor = conn.cursor()
            self._setup(cursor)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._unavailable(exc, "opening the file") from exc
            raise
        return cursor

    def _setup(self, cursor: sqlite3.Cursor) -> None:
        """Switch to WAL and bring the schema up to date, retrying SQLITE_BUSY within *busy_timeout*.

        Two processes opening a new file at once can get "database is locked" from the switch
        to WAL without SQLite calling its busy handler, so the retry is ours: short real waits
        (this is I/O against another process, not a backoff the library clock could skip).
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.001
        while True:
            try:
                if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
                if cursor.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    self._migrate(cursor)
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() >= deadline:
                    raise
                if cursor.connection.in_transaction:
                    cursor.execute("ROLLBACK")
                time.sleep(pause)
                pause = min(pause * 2, 0.025)

    def _migrate(self, cursor: sqlite3.Cursor) -> None:
        cursor.execute("BEGIN IMMEDIATE")
        found = cursor.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            cursor.execute("ROLLBACK")
            msg = (
                f"SQLite store {str(self._path)!r} has schema version {found}, newer than this reliable "
                f"understands ({SCHEMA_VERSION}); upgrade reliable or use another file"
            )
            raise StoreUnavailableError(msg, path=str(self._path), schema_version=found)
        if found < SCHEMA_VERSION:
            steps = _SCHEMA if found == 0 else [step for at in range(found, SCHEMA_VERSION) for step in _MIGRATIONS[at]]
            for statement in steps:
                cursor.execute(statement)
            cursor.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        cursor.execute("COMMIT")

    def _live_cursor(self) -> sqlite3.Cursor:
        cursor = self._cursor
        if cursor is None:
            if self._closed:
                msg = f"SQLiteStore({str(self._path)!r}) is closed; create a new one"
                raise StoreUnavailableError(msg, path=str(self._path))
            cursor = self._cursor = self._connect()
        return cursor

    def _after_fork(self) -> None:
        with _fork_guard:
            if self._pid != os.getpid():
                if self._cursor is not None:
                    _abandoned.append(self._cursor.connection)
                    self._cursor = None
                self._lock = threading.Lock()
                self._pid = os.getpid()

    def _run(self, op: Callable[..., T], *args: Any) -> T:
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            cursor = self._live_cursor()
            try:
                return op(cursor, *args)
            except BaseException as exc:
                _rollback(cursor)
                if isinstance(exc, sqlite3.Error):
                    raise self._unavailable(exc, f"running {op.__name__.lstrip('_')}()") from exc
                raise

    async def _arun(self, op: Callable[..., T], *args: Any, reads: bool = False) -> T:
        """Run *op* on the loop if it needs no waiting, else in a thread; WAL readers (*reads*) never wait."""
        if self._pid == os.getpid() and self._lock.acquire(blocking=False):
            try:
                cursor = self._live_cursor()
                if not reads:
                    cursor.execute("PRAGMA busy_timeout = 0")
                try:
                    return op(cursor, *args)
                except sqlite3.OperationalError as exc:
                    _rollback(cursor)
                    if not _is_busy(exc):
                        raise self._unavailable(exc, f"running {op.__name__.lstrip('_')}()") from exc
                except BaseException:
                    _rollback(cursor)
                    raise
                finally:
                    if not reads:
                        cursor.execute(self._wait)
            finally:
                self._lock.release()
        return await asyncio.to_thread(self._run, op, *args)

    def _now(self) -> float:
        return (self._clock or _clock.current()).time()

    # -- operations: each runs with the lock held, on the store's cursor ---------

    def _write(self, cursor: sqlite3.Cursor, statement: str, params: tuple[Any, ...]) -> int | None:
        """Run one write *statement*; return the version it wrote, or None if its condition was false."""
        cursor.execute(statement, params)
        if cursor.rowcount <= 0:
            return None
        version: int = cursor.lastrowid  # type: ignore[assignment]  # set: the statement inserted a row
        self._wrote(cursor)
        return version

    def _wrote(self, cursor: sqlite3.Cursor) -> None:
        """Count a committed write; every `_PURGE_EVERY` writes, purge the next `_SWEEP` rows of the sweep."""
        self._writes += 1
        if self._writes % _PURGE_EVERY:
            return
        # Best effort, in its own transaction: the write is committed, so a failure here (a lock held too long)
        # must not make the caller think it failed, or rerun it; the next purge goes on where this one stopped.
        with contextlib.suppress(sqlite3.Error):
            end, seen = cursor.execute(_SWEEP_END, (self._swept,)).fetchone()
            if end is not None:
                cursor.execute(_PURGE, (self._swept, end, self._now()))
            self._swept = end if seen == _SWEEP else 0

    def _get(self, cursor: sqlite3.Cursor, key: str) -> Record | None:
        return _read(cursor, key, self._now())

    def _put_if_absent(
        self, cursor: sqlite3.Cursor, key: str, data: tuple[bool, bytes], ttl: float | None
    ) -> tuple[Record, bool]:
        existing = self._get(cursor, key)  # the common replay path needs no write lock
        while existing is None:
            now = self._now()
            expires = _expiry(now, ttl)
            version = self._write(cursor, _CLAIM, (key, data[0], data[1], expires, key, now))
            if version is not None:
                return Record(key, _copy(data), version, expires), True
            existing = _read(cursor, key, now)  # another writer created it since the first read (None: gone again)
        return existing, False

    def _compare_and_set(
        self, cursor: sqlite3.Cursor, key: str, data: tuple[bool, bytes], version: int, ttl: float | None
    ) -> Record | None:
        now = self._now()
        expires = _expiry(now, ttl)
        written = self._write(cursor, _CAS, (key, data[0], data[1], expires, key, version, now))
        return None if written is None else Record(key, _copy(data), written, expires)

    def _set(self, cursor: sqlite3.Cursor, key: str, data: tuple[bool, bytes], ttl: float | None) -> Record:
        expires = _expiry(self._now(), ttl)
        version = self._write(cursor, _SET, (key, data[0], data[1], expires))
        if version is None:  # pragma: no cover - an unconditional insert always writes
            raise StoreError(f"SQLite wrote nothing for set({key!r})", key=key)
        return Record(key, _copy(data), version, expires)

    def _delete(self, cursor: sqlite3.Cursor, key: str, version: int | None) -> bool:
        now = self._now()
        if version is None:
            deleted = cursor.execute(_DELETE, (_DEAD, key, now)).rowcount
        else:
            deleted = cursor.execute(_DELETE_VERSION, (_DEAD, key, version, now)).rowcount
        return deleted > 0

    def _incr(self, cursor: sqlite3.Cursor, key: str, amount: int, ttl: float | None) -> int:
        cursor.execute("BEGIN IMMEDIATE")  # read, check the type, write: one transaction
        now = self._now()
        row = cursor.execute(_GET, (key, now)).fetchone()
        if row is not None:
            current, expires = _counter(key, decode(row[0], row[1])), row[3]
        else:
            current, expires = 0, _expiry(now, ttl)
        total = current + amount
        cursor.execute(_SET, (key, True, str(total).encode(), expires))
        cursor.execute("COMMIT")
        self._wrote(cursor)
        return total

    def _scan(self, cursor: sqlite3.Cursor, prefix: str, limit: int | None) -> list[Record]:
        upper, count = _after_prefix(prefix), -1 if limit is None else limit
        if upper is None:
            rows = cursor.execute(_SCAN_ALL, (prefix, self._now(), count)).fetchall()
        else:
            rows = cursor.execute(_SCAN, (prefix, self._now(), upper, count)).fetchall()
        return [Record(row[0], decode(row[1], row[2]), row[3], row[4]) for row in rows]

    # -- Store -------------------------------------------------------------------

    def now(self) -> float:
        return self._now()

    def get(self, key: str) -> Record | None:
        return self._run(self._get, check_key(key))

    def put_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        return self._run(self._put_if_absent, check_key(key), encode(value), check_ttl(ttl))

    def compare_and_set(self, key: str, value: Value, *, version: int, ttl: float | None = None) -> Record | None:
        return self._run(self._compare_and_set, check_key(key), encode(value), check_version(version), check_ttl(ttl))

    def set(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        return self._run(self._set, check_key(key), encode(value), check_ttl(ttl))

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return self._run(self._delete, check_key(key), None if version is None else check_version(version))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self._run(self._incr, check_key(key), check_amount(amount), check_ttl(ttl))

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        return self._run(self._scan, check_prefix(prefix), check_limit(limit))

    def close(self) -> None:
        """Close the connection; later calls raise `StoreUnavailableError`. Closing twice is harmless."""
        if self._pid != os.getpid():
            self._after_fork()  # never close (or wait on the lock of) what the parent process holds
        with self._lock:
            self._closed = True
            cursor, self._cursor = self._cursor, None
            if cursor is not None:
                cursor.connection.close()

    # -- AsyncStore ----------------------------------------------------------------

    async def anow(self) -> float:
        return self._now()

    async def aget(self, key: str) -> Record | None:
        return await self._arun(self._get, check_key(key), reads=True)

    async def aput_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        return await self._arun(self._put_if_absent, check_key(key), encode(value), check_ttl(ttl))

    async def acompare_and_set(
        self, key: str, value: Value, *, version: int, ttl: float | None = None
    ) -> Record | None:
        return await self._arun(
            self._compare_and_set, check_key(key), encode(value), check_version(version), check_ttl(ttl)
        )

    async def aset(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        return await self._arun(self._set, check_key(key), encode(value), check_ttl(ttl))

    async def adelete(self, key: str, *, version: int | None = None) -> bool:
        return await self._arun(self._delete, check_key(key), None if version is None else check_version(version))

    async def aincr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return await self._arun(self._incr, check_key(key), check_amount(amount), check_ttl(ttl))

    async def ascan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        return await self._arun(self._scan, check_prefix(prefix), check_limit(limit), reads=True)

    async def aclose(self) -> None:
        self.close()


def _rollback(cursor: sqlite3.Cursor) -> None:
    if cursor.connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # a broken connection: the caller reports why
            cursor.execute("ROLLBACK")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (named in sqlite3 from 3.11)
    return "locked" in str(exc) or "busy" in str(exc)  # pragma: no cover - Python 3.10


def _read(cursor: sqlite3.Cursor, key: str, now: float) -> Record | None:
    row = cursor.execute(_GET, (key, now)).fetchone()
    return None if row is None else Record(key, decode(row[0], row[1]), row[2], row[3])


def _copy(data: tuple[bool, bytes]) -> Any:
    """The value a write returns: decoded from what was stored, so it never aliases the caller's object."""
    return decode(data[0], data[1]) if data[0] else data[1]


def _expiry(now: float, ttl: float | None) -> float | None:
    return None if ttl is None else now + ttl


def _counter(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"key {key!r} holds {type(value).__name__}, not a counter; incr() needs an int value"
        raise StoreError(msg, key=key)
    return value


def _after_prefix(prefix: str) -> str | None:
    """The smallest string above every string starting with *prefix* (None: no bound)."""
    while prefix:
        code = ord(prefix[-1]) + 1
        if code == 0xD800:  # surrogates cannot be stored; skip to the next encodable character
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None
