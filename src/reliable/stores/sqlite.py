"""`SQLiteStore`: the embedded default store, one SQLite file shared by threads and processes on one host."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConfigError, StoreError, StoreUnavailableError
from .._internal import _clock
from .._internal._durations import Duration, seconds
from ._codec import check_amount, check_key, check_limit, check_prefix, check_ttl, decode, encode
from ._protocol import Record, Value

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")

SCHEMA_VERSION = 1
"""The file layout this code writes, kept in ``PRAGMA user_version``; later releases migrate up from it."""

_PURGE_EVERY = 256
"""Every this many writes, a write also deletes the expired rows (through an index, in its own transaction)."""

_SCHEMA = (
    "CREATE TABLE reliable_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO reliable_meta (name, value) VALUES ('last_version', 0)",
    "CREATE TABLE reliable_kv (key TEXT PRIMARY KEY, is_json INTEGER NOT NULL, value BLOB NOT NULL,"
    " version INTEGER NOT NULL, expires_at REAL) WITHOUT ROWID",
    "CREATE INDEX reliable_kv_expires_at ON reliable_kv (expires_at) WHERE expires_at IS NOT NULL",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_GET = f"SELECT is_json, value, version, expires_at FROM reliable_kv WHERE key = ? AND {_LIVE}"
# One statement reads the store-wide version counter and the key's row (or NULLs) for a read-modify-write.
_READ_FOR_WRITE = (
    "SELECT m.value, kv.is_json, kv.value, kv.version, kv.expires_at FROM reliable_meta AS m"
    " LEFT JOIN reliable_kv AS kv ON kv.key = ? WHERE m.name = 'last_version'"
)
_BUMP = "UPDATE reliable_meta SET value = ? WHERE name = 'last_version'"
_WRITE = "INSERT OR REPLACE INTO reliable_kv (key, is_json, value, version, expires_at) VALUES (?, ?, ?, ?, ?)"
_DELETE = f"DELETE FROM reliable_kv WHERE key = ? AND {_LIVE}"
_DELETE_VERSION = f"DELETE FROM reliable_kv WHERE key = ? AND version = ? AND {_LIVE}"
_PURGE = "DELETE FROM reliable_kv WHERE expires_at <= ?"
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
    machine). Every read-modify-write runs in one ``BEGIN IMMEDIATE`` transaction,
    so processes sharing the file serialize on SQLite's lock and wait for it up to
    *busy_timeout*. Versions come from one store-wide counter updated in the same
    transaction, so they only grow, even across deletes and expiries. Expired rows
    are invisible at once and deleted every few hundred writes; no thread runs in
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
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            if cursor.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._migrate(cursor)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._unavailable(exc, "opening the file") from exc
            raise
        return cursor

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
        if found == 0:
            for statement in _SCHEMA:
                cursor.execute(statement)
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

    def _write(
        self, cursor: sqlite3.Cursor, key: str, data: tuple[bool, bytes], last: int, expires: float | None
    ) -> Record:
        """Write *key* as version ``last + 1`` and commit the transaction the caller began."""
        version = last + 1
        cursor.execute(_BUMP, (version,))
        cursor.execute(_WRITE, (key, data[0], data[1], version, expires))
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            cursor.execute(_PURGE, (self._now(),))
        cursor.execute("COMMIT")
        return Record(key, decode(*data), version, expires)

    def _get(self, cursor: sqlite3.Cursor, key: str) -> Record | None:
        row = cursor.execute(_GET, (key, self._now())).fetchone()
        return None if row is None else Record(key, decode(row[0], row[1]), row[2], row[3])

    def _put_if_absent(
        self, cursor: sqlite3.Cursor, key: str, data: tuple[bool, bytes], ttl: float | None
    ) -> tuple[Record, bool]:
        existing = self._get(cursor, key)  # the common replay path needs no write lock
        if existing is not None:
            return existing, False
        cursor.execute("BEGIN IMMEDIATE")
        now = self._now()
        last, *row = cursor.execute(_READ_FOR_WRITE, (key,)).fetchone()
        if _is_live(row, now):
            cursor.execute("COMMIT")
            return _record(key, row), False
        return self._write(cursor, key, data, last, _expiry(now, ttl)), True

    def _compare_and_set(
        self, cursor: sqlite3.Cursor, key: str, data: tuple[bool, bytes], version: int, ttl: float | None
    ) -> Record | None:
        cursor.execute("BEGIN IMMEDIATE")
        now = self._now()
        last, *row = cursor.execute(_READ_FOR_WRITE, (key,)).fetchone()
        if not _is_live(row, now) or row[2] != version:
            cursor.execute("COMMIT")
            return None
        return self._write(cursor, key, data, last, _expiry(now, ttl))

    def _set(self, cursor: sqlite3.Cursor, key: str, data: tuple[bool, bytes], ttl: float | None) -> Record:
        cursor.execute("BEGIN IMMEDIATE")
        now = self._now()
        last = cursor.execute(_READ_FOR_WRITE, (key,)).fetchone()[0]
        return self._write(cursor, key, data, last, _expiry(now, ttl))

    def _delete(self, cursor: sqlite3.Cursor, key: str, version: int | None) -> bool:
        cursor.execute("BEGIN IMMEDIATE")
        now = self._now()
        if version is None:
            deleted = cursor.execute(_DELETE, (key, now)).rowcount
        else:
            deleted = cursor.execute(_DELETE_VERSION, (key, version, now)).rowcount
        cursor.execute("COMMIT")
        return deleted > 0

    def _incr(self, cursor: sqlite3.Cursor, key: str, amount: int, ttl: float | None) -> int:
        cursor.execute("BEGIN IMMEDIATE")
        now = self._now()
        last, *row = cursor.execute(_READ_FOR_WRITE, (key,)).fetchone()
        if _is_live(row, now):
            current, expires = _counter(key, decode(row[0], row[1])), row[3]
        else:
            current, expires = 0, _expiry(now, ttl)
        total = current + amount
        self._write(cursor, key, (True, str(total).encode()), last, expires)
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
        return self._run(self._compare_and_set, check_key(key), encode(value), version, check_ttl(ttl))

    def set(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        return self._run(self._set, check_key(key), encode(value), check_ttl(ttl))

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return self._run(self._delete, check_key(key), version)

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
        return await self._arun(self._compare_and_set, check_key(key), encode(value), version, check_ttl(ttl))

    async def aset(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        return await self._arun(self._set, check_key(key), encode(value), check_ttl(ttl))

    async def adelete(self, key: str, *, version: int | None = None) -> bool:
        return await self._arun(self._delete, check_key(key), version)

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


def _is_live(row: list[Any], now: float) -> bool:
    """Whether the ``(is_json, value, version, expires_at)`` part of a joined row is a live record."""
    return row[0] is not None and (row[3] is None or row[3] > now)


def _record(key: str, row: list[Any]) -> Record:
    return Record(key, decode(row[0], row[1]), row[2], row[3])


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
