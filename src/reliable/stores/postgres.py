"""`PostgresStore`: the store in a PostgreSQL table, shared by every process and host that uses it.

Needs ``pip install 'reliable[postgres]'`` (psycopg 3 and psycopg_pool).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import psycopg_pool

from .._errors import ConfigError, ReliableError
from .._internal import _clock
from ._postgres_conn import (
    Connections,
    achecked_out,
    aclose_pool,
    address_of_connection,
    address_of_dsn,
    aensure_schema,
    aexecute,
    aunit,
    checked_out,
    closed_error,
    ensure_schema,
    execute,
    open_connections,
    unit,
    usable,
)
from ._postgres_core import DEFAULT_SCHEMA, DEFAULT_TABLE, Query, Statements
from ._postgres_faults import fault, retry_safe, undefined_table
from ._protocol import Record, Value
from ._server import PerLoop, check_timeout, forked_since, pop_query, test_time

__all__ = ["PostgresStore"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresStore:
    """A `reliable.stores.Store` and `reliable.stores.AsyncStore` in a PostgreSQL table.

    Every operation is one statement in autocommit mode (one round trip): ``INSERT … ON
    CONFLICT`` and ``UPDATE … WHERE version = …`` with ``RETURNING``. Time is the server's
    (``clock_timestamp()``), so leases and TTLs do not depend on the clocks of the hosts;
    versions come from one sequence, so they only grow and are never reused. Expired rows
    are invisible at once and deleted by later writes.

    The table, its sequence and a ``<table>_meta`` table holding the schema version are
    created on first use (when *create* is true and they are missing), or by `migrate`, or
    by running ``reliable/stores/postgres.sql`` (see `ddl`) as a user allowed to run DDL.

    Args:
        url: A libpq URL or DSN (``postgresql://user@host:5432/db``); ``schema`` and
            ``table`` query parameters set *schema* and *table*. Or an existing
            ``psycopg_pool.ConnectionPool`` / ``psycopg.Connection`` (the async methods then
            run it in a thread) or ``AsyncConnectionPool`` / ``AsyncConnection`` (then only
            the async methods work). Give the store autocommit connections for one round
            trip per operation; others get a transaction per operation.
        schema: The schema of the table (default ``public``).
        table: The table name (default ``reliable_store``).
        create: Create the table on first use if it is missing. With False, a missing
            table raises `reliable.StoreError` telling you to run the SQL file.
        timeout: Seconds to wait for a connection before giving up.
        max_connections: Connections the store keeps per process (and per event loop for
            the async methods). It opens them itself when needed, without background threads
            or tasks, so the first call after the server is back works.
        clock: Use this clock's time instead of the server's unless it is the system clock
            (default: the library clock, which is the system clock outside tests).

    Raises:
        ConfigError: a bad URL, schema or table name, timeout or pool size.
        reliable.StoreUnavailableError: (from every operation) the server cannot be reached.
            ``maybe_applied`` is true when a write was sent and the connection died before
            the reply: it may or may not have committed, so read before doing it again.
            Reads are retried once on a fresh connection; a statement whose session the
            server ended (so it was rolled back) is sent again on another; other writes never.
        reliable.StoreError: the server refused the operation (missing rights, missing
            table with ``create=False``, ``incr`` on a non-counter).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url: str | Any = DEFAULT_URL,
        *,
        schema: str | None = None,
        table: str | None = None,
        create: bool = True,
        timeout: float = 5.0,
        max_connections: int = 10,
        clock: _clock.Clock | None = None,
    ) -> None:
        self._timeout = check_timeout(timeout)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            msg = f"max_connections={max_connections!r} is invalid; pass an int >= 1"
            raise ConfigError(msg, parameter="max_connections", value=max_connections)
        self._max = max_connections
        self._create = bool(create)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn_lock = threading.Lock()
        self._dsn: str | None = None
        self._pool: Any = None
        self._pool_pid = os.getpid()
        self._given: Any = None
        self._closed = False
        self._ready = False
        if isinstance(url, str):
            self._dsn, query = pop_query(url, ("schema", "table")) if "://" in url else (url, {})
            schema = query.get("schema") if schema is None else schema
            table = query.get("table") if table is None else table
            self.address = address_of_dsn(self._dsn)
        elif isinstance(url, (psycopg_pool.ConnectionPool, psycopg_pool.AsyncConnectionPool)):
            self._given = url
            self.address = address_of_dsn(url.conninfo if isinstance(url.conninfo, str) else "")
        elif isinstance(url, (psycopg.Connection, psycopg.AsyncConnection)):
            self._given = url
            self.address = address_of_connection(url)
        else:
            msg = f"url={url!r} is not a PostgreSQL URL, pool or connection; pass 'postgresql://user@host/db'"
            raise ConfigError(msg, parameter="url", value=url)
        self._sql = Statements(DEFAULT_SCHEMA if schema is None else schema, DEFAULT_TABLE if table is None else table)
        self._loops: PerLoop[Any] = PerLoop(self._open_async, aclose_pool)
        self._async_conn_lock: asyncio.Lock | None = None

    @property
    def table(self) -> str:
        """The qualified table name, ``schema.table``."""
        return f"{self._sql.schema}.{self._sql.table}"

    def __repr__(self) -> str:
        return f"PostgresStore({self.address!r}, table={self.table!r})"

    @staticmethod
    def ddl(*, schema: str = DEFAULT_SCHEMA, table: str = DEFAULT_TABLE) -> str:
        """The SQL that creates the store's objects (what `migrate` runs; ``postgres.sql`` for the defaults)."""
        from ._postgres_core import ddl

        return ddl(schema, table)

    # -- connections ---------------------------------------------------------------

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True}
        if "application_name" not in (self._dsn or ""):
            kwargs["application_name"] = "reliable"
        if "connect_timeout" not in (self._dsn or ""):
            kwargs["connect_timeout"] = max(2, math.ceil(self._timeout))
        return kwargs

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._closed:
            raise closed_error(self.address)
        given = self._given
        if isinstance(given, psycopg.Connection):
            with self._conn_lock:
                yield usable(given)
            return
        if isinstance(given, psycopg_pool.ConnectionPool):
            with checked_out(given, self._timeout, self._max) as conn:
                yield conn
            return
        if given is not None:
            msg = f"this PostgresStore was made from {type(given).__name__}; use the a* methods or pass a URL"
            raise ConfigError(msg, parameter="url")
        pool = self._pool
        if pool is None or forked_since(self._pool_pid, pool):
            with self._lock:
                if self._pool is None or forked_since(self._pool_pid, self._pool):
                    self._pool = Connections(self._dsn or "", self._kwargs(), self._max, self._timeout)
                    self._pool_pid = os.getpid()
                pool = self._pool
        with pool.connection() as conn:
            yield conn

    async def _open_async(self) -> Any:
        return await open_connections(self._dsn or "", self._kwargs(), self._max, self._timeout)

    @asynccontextmanager
    async def _aconnection(self) -> AsyncIterator[Any]:
        if self._closed:
            raise closed_error(self.address)
        given = self._given
        if isinstance(given, psycopg.AsyncConnection):
            if self._async_conn_lock is None:
                self._async_conn_lock = asyncio.Lock()
            async with self._async_conn_lock:
                yield usable(given)
            return
        if not isinstance(given, psycopg_pool.AsyncConnectionPool):
            async with (await self._loops.get()).connection() as conn:
                yield conn
            return
        pool = given
        async with achecked_out(pool, self._timeout, self._max) as conn:
            yield conn

    # -- drivers: the only code that does I/O --------------------------------------

    def _run(self, query: Query) -> Any:
        for attempt in range(1, self._max + 3):
            try:
                with self._connection() as conn:
                    if not self._ready:
                        self._ensure(conn)
                    with unit(conn):
                        return execute(conn, query)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                if retry_safe(query.operation, exc, attempt, self._max):
                    continue
                raise self._fault(query, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arun(self, query: Query) -> Any:
        if isinstance(self._given, (psycopg.Connection, psycopg_pool.ConnectionPool)):
            return await asyncio.to_thread(self._run, query)
        for attempt in range(1, self._max + 3):
            try:
                async with self._aconnection() as conn:
                    if not self._ready:
                        await self._aensure(conn)
                    async with aunit(conn):
                        return await aexecute(conn, query)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                if retry_safe(query.operation, exc, attempt, self._max):
                    continue
                raise self._fault(query, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _fault(self, query: Query, exc: BaseException) -> ReliableError:
        if undefined_table(exc):
            self._ready = False
        return fault(self.address, self.table, query.operation, query.key, exc)

    def _ensure(self, conn: Any) -> None:
        """Check the schema version once; create the objects if they are missing and *create* allows."""
        ensure_schema(conn, self._sql, create=self._create, force=False, address=self.address)
        self._ready = True

    async def _aensure(self, conn: Any) -> None:
        await aensure_schema(conn, self._sql, create=self._create, force=False, address=self.address)
        self._ready = True

    def migrate(self) -> int:
        """Create the table, sequence and schema-version row if missing; return the schema version.

        Safe to run any number of times, from several processes at once (it takes an
        advisory lock). Needs the rights to create tables in the schema.

        .. versionadded:: 0.1.0
        """
        try:
            with self._connection() as conn:
                version = ensure_schema(conn, self._sql, create=True, force=True, address=self.address)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise fault(self.address, self.table, "migrate", None, exc) from exc
        self._ready = True
        return version

    async def amigrate(self) -> int:
        """The async twin of `migrate`."""
        try:
            async with self._aconnection() as conn:
                version = await aensure_schema(conn, self._sql, create=True, force=True, address=self.address)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise fault(self.address, self.table, "migrate", None, exc) from exc
        self._ready = True
        return version

    def _time(self) -> float | None:
        return test_time(self._clock)

    # -- Store ---------------------------------------------------------------------

    def now(self) -> float:
        return float(self._run(self._sql.now(self._time())))

    def get(self, key: str) -> Record | None:
        result: Record | None = self._run(self._sql.get(key, self._time()))
        return result

    def put_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        result: tuple[Record, bool] = self._run(self._sql.put_if_absent(key, value, ttl, self._time()))
        return result

    def compare_and_set(self, key: str, value: Value, *, version: int, ttl: float | None = None) -> Record | None:
        result: Record | None = self._run(self._sql.compare_and_set(key, value, version, ttl, self._time()))
        return result

    def set(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        result: Record = self._run(self._sql.set(key, value, ttl, self._time()))
        return result

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return bool(self._run(self._sql.delete(key, version, self._time())))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return int(self._run(self._sql.incr(key, amount, ttl, self._time())))

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        query = self._sql.scan(prefix, limit, self._time())
        result: list[Record] = [] if query is None else self._run(query)
        return result

    def close(self) -> None:
        """Close the pools this store opened (a pool or connection you passed in stays open)."""
        self._closed = True
        self._loops.close_all()
        pool, self._pool = self._pool, None
        if pool is not None and not forked_since(self._pool_pid, pool):
            pool.close()

    # -- AsyncStore ------------------------------------------------------------------

    async def anow(self) -> float:
        return float(await self._arun(self._sql.now(self._time())))

    async def aget(self, key: str) -> Record | None:
        result: Record | None = await self._arun(self._sql.get(key, self._time()))
        return result

    async def aput_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        result: tuple[Record, bool] = await self._arun(self._sql.put_if_absent(key, value, ttl, self._time()))
        return result

    async def acompare_and_set(
        self, key: str, value: Value, *, version: int, ttl: float | None = None
    ) -> Record | None:
        result: Record | None = await self._arun(self._sql.compare_and_set(key, value, version, ttl, self._time()))
        return result

    async def aset(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        result: Record = await self._arun(self._sql.set(key, value, ttl, self._time()))
        return result

    async def adelete(self, key: str, *, version: int | None = None) -> bool:
        return bool(await self._arun(self._sql.delete(key, version, self._time())))

    async def aincr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return int(await self._arun(self._sql.incr(key, amount, ttl, self._time())))

    async def ascan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        query = self._sql.scan(prefix, limit, self._time())
        result: list[Record] = [] if query is None else await self._arun(query)
        return result

    async def aclose(self) -> None:
        """Close this event loop's pool, then the rest (a pool or connection you passed in stays open)."""
        await self._loops.aclose_current()
        self.close()
