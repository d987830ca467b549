"""How `PostgresStore` tells a dead connection from a refused statement, and the errors it raises."""

from __future__ import annotations

import psycopg
import psycopg_pool

from .._errors import ReliableError, StoreError
from ._postgres_core import NOT_A_COUNTER_STATES
from ._server import unavailable

_SERVER_GONE = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004", "53300"})
"""SQLSTATEs that mean the server ended or refused the session (shutdown, crash, too many connections)."""


_LOST = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006"})
"""SQLSTATEs of a session that ended under a statement: a read may be retried on another connection."""


def is_lost(exc: BaseException) -> bool:
    """Whether *exc* means the connection died (so a read may be retried on another one)."""
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg_pool.PoolTimeout):
        return exc.sqlstate is None or exc.sqlstate in _LOST
    return False


_ROLLED_BACK = frozenset({"57P01", "57P02", "08003"})
"""SQLSTATEs of a session the server ended (or that was gone before use): a statement it ran was rolled back."""


def retry_safe(operation: str, exc: BaseException, attempt: int, connections: int) -> bool:
    """Whether *operation* may be sent again after its *attempt*-th try failed with *exc*.

    Any operation the server certainly did not apply (it ended the session, which rolled the
    statement back) goes again on another connection, up to one more time than there are
    pooled connections (a restart or ``pg_terminate_backend`` ends them all at once). A read
    whose connection died goes once more. A write whose connection died without a word never
    does: it may have been applied.
    """
    if isinstance(exc, psycopg_pool.PoolTimeout) or not isinstance(exc, psycopg.OperationalError):
        return False
    if exc.sqlstate in _ROLLED_BACK:
        return attempt <= connections + 1
    return attempt == 1 and operation in ("get", "scan", "now") and is_lost(exc)


def undefined_table(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.errors.UndefinedTable)


def migrate_error(table: str, address: str) -> StoreError:
    msg = (
        f"table {table} does not exist at {address}; run PostgresStore.migrate() as a user who may create "
        "tables, or apply reliable/stores/postgres.sql (PostgresStore.ddl(schema=..., table=...)), "
        "or pass create=True"
    )
    return StoreError(msg, table=table, address=address)


def fault(address: str, table: str, operation: str, key: str | None, exc: BaseException) -> ReliableError:
    """The `reliable` error for a driver error *exc* raised by *operation*."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return unavailable("PostgreSQL", address, operation, key, exc, sent=False)
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, psycopg.OperationalError) and (sqlstate is None or sqlstate in _SERVER_GONE):
        # With an error response the server failed the statement (an autocommit statement that
        # fails is rolled back); with none, the connection died and the outcome is unknown.
        return unavailable("PostgreSQL", address, operation, key, exc, sent=sqlstate is None)
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return migrate_error(table, address)
    if operation == "incr" and sqlstate in NOT_A_COUNTER_STATES:
        msg = f"key {key!r} holds a value that is not an int counter ({exc}); incr() needs an int value"
        return StoreError(msg, key=key, sqlstate=sqlstate)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        msg = (
            f"PostgreSQL at {address} refused {operation} on {table}: {exc}. Grant the store's user SELECT, "
            f"INSERT, UPDATE, DELETE on {table} and {table}_meta, and USAGE on the sequence {table}_version"
        )
        return StoreError(msg, address=address, table=table, operation=operation, key=key, sqlstate=sqlstate)
    msg = f"PostgreSQL at {address} refused {operation}({key!r}) on {table}: {exc} (SQLSTATE {sqlstate})"
    return StoreError(msg, address=address, table=table, operation=operation, key=key, sqlstate=sqlstate)
