"""`PostgresStore`'s connection handling: pooled connections checked without a round trip, statements, DDL."""

from __future__ import annotations

import asyncio
import select
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from typing import Any

import psycopg
import psycopg_pool
from psycopg import conninfo as _conninfo
from psycopg import pq

from .._errors import ConfigError, ReliableError, StoreError
from ._postgres_core import Query, Statements
from ._postgres_faults import migrate_error


def idle_ok(conn: Any) -> bool:
    """Whether a pooled idle connection still looks alive, without a round trip.

    A server that ended an idle session (``pg_terminate_backend``, a restart) has already
    sent an error or closed the socket, so the socket is readable: such a connection is
    dropped before a statement is sent on it, and the statement goes to a fresh one.
    """
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


class Connections:
    """The store's own connections: idle ones are reused, new ones opened by the calling thread.

    Not a ``psycopg_pool.ConnectionPool``: its worker threads reconnect with a growing backoff
    after an outage, so operations kept failing for seconds after the server was back; and
    they do not survive a fork. Here a connection is opened when one is needed, so the first
    call after the server returns works.
    """

    def __init__(self, dsn: str, kwargs: dict[str, Any], max_size: int, timeout: float) -> None:
        self._dsn = dsn
        self._kwargs = kwargs
        self._timeout = timeout
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_size)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=self._timeout):
            raise psycopg_pool.PoolTimeout(f"no connection was free within {self._timeout:.1f}s")
        try:
            conn = self._take()
            try:
                yield conn
            finally:
                if conn.closed or conn.broken or conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    conn.close()
                else:
                    with self._lock:
                        self._idle.append(conn)
        finally:
            self._slots.release()

    def _take(self) -> Any:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if idle_ok(conn):
                return conn
            conn.close()
        try:
            return psycopg.Connection.connect(self._dsn, **self._kwargs)
        except psycopg.OperationalError as exc:  # could not connect: nothing was sent
            raise CONNECT_FAILED(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class AsyncConnections:
    """The async connections of one event loop: idle ones are reused, new ones opened by the caller's task.

    Not a ``psycopg_pool.AsyncConnectionPool``: that pool's background tasks can be cancelled
    while they connect when ``asyncio.run`` ends, and ``asyncio.run`` then waits for them
    forever. Here nothing runs in the background, so nothing outlives the caller's task.
    """

    def __init__(self, dsn: str, kwargs: dict[str, Any], max_size: int, timeout: float) -> None:
        self._dsn = dsn
        self._kwargs = kwargs
        self._timeout = timeout
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(max_size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self._timeout)
            except asyncio.TimeoutError:
                raise psycopg_pool.PoolTimeout(f"no connection was free within {self._timeout:.1f}s") from None
        else:
            await self._slots.acquire()
        try:
            conn = await self._take()
            try:
                yield conn
            finally:
                if conn.closed or conn.broken or conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    await conn.close()
                else:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    async def _take(self) -> Any:
        while self._idle:
            conn = self._idle.pop()
            if idle_ok(conn):
                return conn
            await conn.close()
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, **self._kwargs)
        except psycopg.OperationalError as exc:  # could not connect: nothing was sent
            raise CONNECT_FAILED(str(exc)) from exc

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


CONNECT_FAILED = psycopg.errors.SqlclientUnableToEstablishSqlconnection
"""Raised when no connection could be opened (SQLSTATE 08001), so the fault says nothing was applied."""


@asynccontextmanager
async def achecked_out(pool: Any, timeout: float, tries: int) -> AsyncIterator[Any]:
    """The async twin of `checked_out`."""
    for _ in range(tries + 1):
        conn = await pool.getconn(timeout=timeout)
        if idle_ok(conn):
            break
        await conn.close()
        await pool.putconn(conn)
    else:
        raise psycopg.errors.ConnectionDoesNotExist("every pooled connection was dead")
    try:
        yield conn
    finally:
        await pool.putconn(conn)


def unit(conn: Any) -> AbstractContextManager[Any]:
    """Nothing on an autocommit connection (one round trip); else a transaction around the statement."""
    return nullcontext() if conn.autocommit else conn.transaction()


def aunit(conn: Any) -> AbstractAsyncContextManager[Any]:
    return nullcontext() if conn.autocommit else conn.transaction()


def execute(conn: Any, query: Query) -> Any:
    cur = conn.cursor(binary=True)
    cur.execute(query.sql, query.params)
    rows = cur.fetchall() if cur.description is not None else []
    return query.parse(rows, cur.rowcount)


async def aexecute(conn: Any, query: Query) -> Any:
    cur = conn.cursor(binary=True)
    await cur.execute(query.sql, query.params)
    rows = await cur.fetchall() if cur.description is not None else []
    return query.parse(rows, cur.rowcount)


def run_ddl(conn: Any, sql: Statements) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [sql.lock_name])
        conn.execute(sql.ddl.encode())


async def arun_ddl(conn: Any, sql: Statements) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [sql.lock_name])
        await conn.execute(sql.ddl.encode())


def ensure_schema(conn: Any, sql: Statements, *, create: bool, force: bool, address: str) -> int:
    """Read the schema version; run the DDL first if *force*, or if the table is missing and *create*."""
    table = f"{sql.schema}.{sql.table}"
    if not force:
        try:
            with unit(conn):
                return check_version(execute(conn, sql.schema_version()), table)
        except psycopg.errors.UndefinedTable:
            if not create:
                raise migrate_error(table, address) from None
    run_ddl(conn, sql)
    with unit(conn):
        return check_version(execute(conn, sql.schema_version()), table)


async def aensure_schema(conn: Any, sql: Statements, *, create: bool, force: bool, address: str) -> int:
    """The async twin of `ensure_schema`."""
    table = f"{sql.schema}.{sql.table}"
    if not force:
        try:
            async with aunit(conn):
                return check_version(await aexecute(conn, sql.schema_version()), table)
        except psycopg.errors.UndefinedTable:
            if not create:
                raise migrate_error(table, address) from None
    await arun_ddl(conn, sql)
    async with aunit(conn):
        return check_version(await aexecute(conn, sql.schema_version()), table)


def check_version(rows: Any, table: str) -> int:
    from ._postgres_core import SCHEMA_VERSION

    found = int(rows[0][0]) if rows else 0
    if found != SCHEMA_VERSION:
        msg = (
            f"table {table} has schema version {found}, this reliable reads version {SCHEMA_VERSION}; "
            "upgrade reliable, or run PostgresStore.migrate() / the postgres.sql of this version"
        )
        raise StoreError(msg, table=table, schema_version=found)
    return found


@contextmanager
def checked_out(pool: Any, timeout: float, tries: int) -> Iterator[Any]:
    """A connection from *pool* that still looks alive (see `idle_ok`); dead ones are closed and dropped."""
    for _ in range(tries + 1):
        conn = pool.getconn(timeout=timeout)
        if idle_ok(conn):
            break
        conn.close()
        pool.putconn(conn)
    else:
        raise psycopg.errors.ConnectionDoesNotExist("every pooled connection was dead")
    try:
        yield conn
    finally:
        pool.putconn(conn)


def usable(conn: Any) -> Any:
    if conn.closed or conn.broken:
        raise psycopg.errors.ConnectionDoesNotExist("the connection given to PostgresStore is closed")
    return conn


async def aclose_pool(pool: Any) -> None:
    await pool.close()


async def open_connections(dsn: str, kwargs: dict[str, Any], max_size: int, timeout: float) -> AsyncConnections:
    return AsyncConnections(dsn, kwargs, max_size, timeout)


def address_of_dsn(dsn: str) -> str:
    """``postgresql://user@host:port/dbname`` from a URL or DSN, without the password."""
    try:
        params = _conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        msg = f"cannot parse PostgreSQL URL/DSN ({exc}); pass 'postgresql://user@host:5432/db'"
        raise ConfigError(msg, parameter="url") from exc
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    return f"postgresql://{user}{host}:{port}/{params.get('dbname') or ''}"


def address_of_connection(conn: Any) -> str:
    info = conn.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


def closed_error(address: str) -> ReliableError:
    from .._errors import StoreUnavailableError

    return StoreUnavailableError(f"PostgresStore for {address} is closed; make a new one", address=address)
