"""`PostgresStore`'s connection handling: pooled connections checked without a round trip, statements, DDL."""

from __future__ import annotations

import select
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import conninfo as _conninfo

from .._errors import ConfigError, ReliableError, StoreError
from ._postgres_core import Query, Statements


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
