"""The Redis and PostgreSQL entries of tests/backends.py: isolated stores on shared servers.

Servers come from ``RELIABLE_TEST_REDIS_URL`` / ``RELIABLE_TEST_POSTGRES_URL`` (default: the
local ones). Each store gets its own key prefix (Redis) or table (PostgreSQL), named after
this run and a counter and carried in the URL's query, so a child process opening the URL
with `reliable.stores.open` sees the same store, and parallel runs never meet. Everything
this run created is deleted when the process exits.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

REDIS_URL = os.environ.get("RELIABLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("RELIABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

RUN = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
"""Names this test run's prefixes and schema, so that parallel runs do not interfere."""
REDIS_PREFIX = f"reliable-test:{RUN}:"
POSTGRES_SCHEMA = f"reliable_test_{RUN}"
_counter = itertools.count()
_used: set[str] = set()


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def redis_url(_tmp_path: Path | None = None) -> str:
    """The URL of a fresh, isolated Redis store (its own key prefix)."""
    _cleanup_at_exit("redis")
    return with_query(REDIS_URL, prefix=f"{REDIS_PREFIX}{next(_counter)}:")


def postgres_url(_tmp_path: Path | None = None) -> str:
    """The URL of a fresh, isolated PostgreSQL store (its own table in this run's schema)."""
    _cleanup_at_exit("postgres")
    return with_query(POSTGRES_URL, schema=POSTGRES_SCHEMA, table=f"t{next(_counter)}")


def open_url(url: str) -> Any:
    from reliable.stores import open as open_store

    return open_store(url)


@functools.cache
def redis_unavailable() -> str | None:
    """Why the test Redis server cannot be used, or None."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (pip install 'reliable[redis]')"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"cannot reach Redis at {REDIS_URL} ({exc}); start it or set RELIABLE_TEST_REDIS_URL"
    finally:
        client.close()
    return None


@functools.cache
def postgres_unavailable() -> str | None:
    """Why the test PostgreSQL server cannot be used, or None."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg or psycopg_pool is not installed (pip install 'reliable[postgres]')"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"cannot reach PostgreSQL at {POSTGRES_URL} ({exc}); start it or set RELIABLE_TEST_POSTGRES_URL"
    return None


def _cleanup_at_exit(kind: str) -> None:
    if kind not in _used:
        _used.add(kind)
        atexit.register(_delete_redis_keys if kind == "redis" else _drop_postgres_schema)


def _delete_redis_keys() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        batch = list(client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    except redis.RedisError:
        pass
    finally:
        client.close()


def _drop_postgres_schema() -> None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{POSTGRES_SCHEMA}" CASCADE')
    except psycopg.Error:
        pass
