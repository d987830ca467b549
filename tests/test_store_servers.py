"""What only the server stores do: URLs and options, existing clients and pools, isolation, schema and
migrations, one round trip per operation, purging, unreachable servers, other event loops and forks.

The store contract itself (tests/test_stores.py) runs on RedisStore and PostgresStore through
tests/backends.py; the faults of a server going away mid-run are in tests/test_store_faults.py.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import server_backends as servers
from backends import REQUIRE_SERVICES
from reliable import ConfigError, StoreError, StoreUnavailableError
from reliable.testing import FakeClock, installed

MODES = ["sync", "async"]


def require(reason: str | None) -> None:
    if reason is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"RELIABLE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    require(servers.redis_unavailable())
    return servers.redis_url()


@pytest.fixture
def pg_url() -> str:
    require(servers.postgres_unavailable())
    return servers.postgres_url()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each behaviour through the blocking methods and through their async twins."""
    return str(request.param)


def call(store: Any, mode: str, operation: str, *args: Any, **kwargs: Any) -> Any:
    """Run *operation* on *store*, blocking or as its ``a``-twin on a fresh event loop."""
    if mode == "sync":
        return getattr(store, operation)(*args, **kwargs)

    async def run() -> Any:
        try:
            return await getattr(store, "a" + operation)(*args, **kwargs)
        finally:
            await store.aclose() if operation == "close" else None

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def admin() -> Any:
    import psycopg

    return psycopg.connect(servers.POSTGRES_URL, autocommit=True)


# -- Redis ---------------------------------------------------------------------------------------------


def test_redis_prefix_from_url_and_argument(redis_url: str) -> None:
    """The URL's ``prefix`` query names the key prefix; prefix= wins over it; the default is 'reliable:'."""
    from reliable.stores.redis import RedisStore

    stores = [RedisStore(redis_url), RedisStore(redis_url, prefix="other:"), RedisStore(servers.REDIS_URL)]

    assert [redis_url.split("prefix=")[1].replace("%3A", ":"), "other:", "reliable:"] == [s.prefix for s in stores]
    for store in stores:
        store.close()


def test_redis_stores_with_other_prefixes_do_not_meet(redis_url: str, mode: str) -> None:
    """Two prefixes on one server are two stores: neither reads, scans nor counts the other's keys."""
    first, second = servers.open_url(redis_url), servers.open_url(servers.redis_url())
    call(first, mode, "set", "k", "first")
    call(first, mode, "incr", "n")

    seen = (call(second, mode, "get", "k"), call(second, mode, "scan", ""), call(second, mode, "incr", "n"))

    assert (None, [], 1) == seen
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"url": 42}, "url"),
        ({"url": "http://127.0.0.1:6379"}, "url"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": 7}, "prefix"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
    ],
)
def test_redis_bad_options_raise_config_error(kwargs: dict[str, Any], parameter: str) -> None:
    """A bad URL, prefix or timeout raises ConfigError naming the parameter, before connecting."""
    from reliable.stores.redis import RedisStore

    options = {"url": "redis://127.0.0.1:1/0", **kwargs}
    with pytest.raises(ConfigError) as info:
        RedisStore(options.pop("url"), **options)

    assert parameter == info.value.parameter


def test_redis_existing_sync_client(redis_url: str) -> None:
    """A redis.Redis passed in serves the blocking methods and (in a thread) the async ones, and stays open."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from reliable.stores.redis import RedisStore

    client = redis.Redis.from_url(servers.REDIS_URL, retry=Retry(NoBackoff(), 0))
    store = RedisStore(client, prefix=f"{servers.REDIS_PREFIX}client:{uuid.uuid4().hex}:")
    store.set("k", 1)

    seen = (asyncio.run(store.aincr("k")), store.get("k").value)
    store.close()

    assert ((2, 2), True) == (seen, client.ping())
    client.close()


def test_redis_existing_async_client(redis_url: str) -> None:
    """A redis.asyncio.Redis passed in serves the async methods; the blocking ones raise ConfigError."""
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from reliable.stores.redis import RedisStore

    async def main() -> Any:
        client = redis.asyncio.Redis.from_url(servers.REDIS_URL, retry=Retry(NoBackoff(), 0))
        store = RedisStore(client, prefix=f"{servers.REDIS_PREFIX}aclient:{uuid.uuid4().hex}:")
        record = await store.aset("k", [1])
        value = (await store.aget("k")).value
        with pytest.raises(ConfigError, match="a\\* methods"):
            store.get("k")
        await client.aclose()
        return record.value, value

    assert ([1], [1]) == asyncio.run(main())


def test_redis_client_that_retries_warns_and_one_that_decodes_is_refused() -> None:
    """A client that retries commands (redis-py's default) warns that writes may apply twice; decoding is refused."""
    import redis

    from reliable.stores.redis import RedisStore

    with pytest.warns(UserWarning, match="applied twice"):
        RedisStore(redis.Redis(port=1))
    with pytest.raises(ConfigError, match="decode_responses"):
        RedisStore(redis.Redis(port=1, decode_responses=True))


class _Counting:
    """A redis-py connection class that records the name of every command it sends."""

    sent: list[bytes] = []

    @classmethod
    def make(cls) -> type:
        import redis

        class Connection(redis.Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                head = command if isinstance(command, bytes) else b"".join(command[:1])
                cls.sent.append(head.split(b"\r\n")[2])
                super().send_packed_command(command, check_health)

        return Connection


def test_redis_one_round_trip_per_operation(redis_url: str) -> None:
    """Every operation sends one EVALSHA (now: one TIME), once the server has seen the scripts."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from reliable.stores.redis import RedisStore

    pool = redis.ConnectionPool.from_url(
        servers.REDIS_URL, connection_class=_Counting.make(), retry=Retry(NoBackoff(), 0)
    )
    client = redis.Redis(connection_pool=pool)
    store = RedisStore(client, prefix=redis_url.split("prefix=")[1].replace("%3A", ":"))

    def operations() -> None:
        record, _ = store.put_if_absent("k", 1, ttl=60)
        store.get("k")
        store.compare_and_set("k", 2, version=record.version)
        store.set("j", 1)
        store.incr("n")
        store.scan("")
        store.delete("j")
        store.now()

    operations()  # the server learns any script it had not seen (EVAL after NOSCRIPT)
    _Counting.sent.clear()
    operations()

    assert [b"EVALSHA"] * 7 + [b"TIME"] == _Counting.sent
    client.close()


def test_redis_native_expiry_is_only_a_backstop(redis_url: str) -> None:
    """A record with a TTL also gets a Redis TTL just past its own expiry; one without a TTL gets none."""
    import redis

    store = servers.open_url(redis_url)
    store.set("timed", 1, ttl=30)
    store.set("plain", 1)
    client = redis.Redis.from_url(servers.REDIS_URL)

    timed = client.pttl(f"{store.prefix}k:timed")
    plain = client.pttl(f"{store.prefix}k:plain")

    assert (True, -1) == (30_000 < timed <= 31_000, plain)
    client.close()
    store.close()


def test_redis_expired_records_are_purged_by_later_writes(redis_url: str) -> None:
    """Expired records, their index and expiry entries are deleted by later writes: no daemon, no leftovers."""
    import redis

    store = servers.open_url(redis_url)
    client = redis.Redis.from_url(servers.REDIS_URL)
    with installed(FakeClock()) as clock:
        for i in range(10):
            store.set(f"old:{i}", i, ttl=5)
        clock.advance(6)
        store.set("new", 1)

        left = sorted(k.decode() for k in client.scan_iter(match=f"{store.prefix}*"))

    expected = [f"{store.prefix}{name}" for name in ("index", "k:new", "version")]
    assert expected == left
    client.close()
    store.close()


# -- PostgreSQL ------------------------------------------------------------------------------------------


def _objects(schema: str, table: str) -> list[str]:
    with admin() as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname LIKE %s ORDER BY 1",
            [schema, table + "%"],
        ).fetchall()
    return [r[0] for r in rows]


def test_postgres_table_created_on_first_use_in_the_configured_schema(pg_url: str) -> None:
    """The first operation creates the table, its index, sequence and meta table (schema_version 1) where told."""
    from reliable.stores.postgres import PostgresStore

    schema, table = f"{servers.POSTGRES_SCHEMA}_own", f"first_use_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(servers.POSTGRES_URL, schema=schema, table=table)
    before = _objects(schema, table)
    store.set("k", 1)

    after = _objects(schema, table)
    with admin() as conn:
        version = conn.execute(f'SELECT value FROM "{schema}"."{table}_meta"').fetchall()
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    assert [] == before
    assert [
        table,
        f"{table}_expires_at",
        f"{table}_meta",
        f"{table}_meta_pkey",
        f"{table}_pkey",
        f"{table}_version",
    ] == after
    assert [("1",)] == version
    store.close()


@pytest.mark.parametrize("name", ["Upper", "1abc", "x" * 49, "a-b", "t; DROP TABLE x", "", 7])
@pytest.mark.parametrize("parameter", ["schema", "table"])
def test_postgres_bad_names_raise_config_error(parameter: str, name: Any) -> None:
    """A schema or table that is not a plain lower-case identifier raises ConfigError naming it, before connecting."""
    from reliable.stores.postgres import PostgresStore

    with pytest.raises(ConfigError) as info:
        PostgresStore("postgresql://postgres@127.0.0.1:1/test", **{parameter: name})

    assert parameter == info.value.parameter


def test_postgres_names_from_url_and_arguments() -> None:
    """schema and table come from the URL's query; the arguments win; the defaults are public.reliable_store."""
    from reliable.stores.postgres import PostgresStore

    url = "postgresql://postgres@127.0.0.1:1/test?schema=s1&table=t1"
    stores = [
        PostgresStore(url),
        PostgresStore(url, table="t2"),
        PostgresStore("postgresql://postgres@127.0.0.1:1/test"),
    ]

    assert ["s1.t1", "s1.t2", "public.reliable_store"] == [s.table for s in stores]


def test_postgres_sql_file_is_the_ddl() -> None:
    """postgres.sql holds exactly the DDL the store runs for the default names, inside one transaction."""
    from reliable.stores.postgres import PostgresStore

    text = (Path(__file__).parents[1] / "src/reliable/stores/postgres.sql").read_text()

    assert text.endswith("BEGIN;\n\n" + PostgresStore.ddl() + "\nCOMMIT;\n")


def test_postgres_without_create_needs_migrate(pg_url: str, mode: str) -> None:
    """With create=False a missing table raises StoreError naming migrate() and postgres.sql; migrate() fixes it."""
    from reliable.stores.postgres import PostgresStore

    store = PostgresStore(pg_url, create=False)
    with pytest.raises(StoreError, match=r"migrate\(\).*postgres\.sql"):
        call(store, mode, "get", "k")

    versions = [store.migrate(), store.migrate()]
    record = call(store, mode, "set", "k", 1)

    assert ([1, 1], 1) == (versions, record.value)
    store.close()


def test_postgres_newer_schema_version_is_refused(pg_url: str) -> None:
    """A table whose meta row says a newer schema version raises StoreError instead of being misread."""
    store = servers.open_url(pg_url)
    store.migrate()
    with admin() as conn:
        conn.execute(f"UPDATE {store.table}_meta SET value = '2'")
    fresh = servers.open_url(pg_url)

    with pytest.raises(StoreError, match="schema version 2"):
        fresh.get("k")
    store.close()
    fresh.close()


@pytest.fixture
def app_role(pg_url: str) -> Iterator[tuple[str, str]]:
    """A login role with only the run-time rights postgres.sql documents, on a migrated table: (url, table)."""
    store = servers.open_url(pg_url)
    store.migrate()
    role = f"reliable_app_{uuid.uuid4().hex[:8]}"
    schema, table = store.table.split(".")
    with admin() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{schema}"."{table}" TO {role}')
        conn.execute(f'GRANT SELECT ON "{schema}"."{table}_meta" TO {role}')
        conn.execute(f'GRANT USAGE ON SEQUENCE "{schema}"."{table}_version" TO {role}')
    url = pg_url.replace("postgres@", f"{role}@", 1)
    yield url, store.table
    store.close()
    with admin() as conn:
        conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}')
        conn.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{schema}" FROM {role}')
        conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}')
        conn.execute(f"DROP ROLE {role}")


def test_postgres_documented_grants_are_enough(app_role: tuple[str, str], mode: str) -> None:
    """A user with only the documented grants (no DDL rights) runs every operation with create=False."""
    from reliable.stores.postgres import PostgresStore

    url, _ = app_role
    store = PostgresStore(url, create=False)

    record, created = call(store, mode, "put_if_absent", "k", 1, ttl=60)
    outcome = (
        created,
        call(store, mode, "compare_and_set", "k", 2, version=record.version).value,
        call(store, mode, "incr", "n"),
        [r.key for r in call(store, mode, "scan", "")],
        call(store, mode, "delete", "k"),
    )

    assert (True, 2, 1, ["k", "n"], True) == outcome
    store.close()


def test_postgres_missing_rights_name_the_grants(app_role: tuple[str, str]) -> None:
    """A user without rights on the table gets a StoreError that lists the grants to ask for."""
    from reliable.stores.postgres import PostgresStore

    url, table = app_role
    with admin() as conn:
        conn.execute(f"REVOKE UPDATE ON {table} FROM {url.split('://')[1].split('@')[0]}")
    store = PostgresStore(url, create=False)

    with pytest.raises(StoreError, match="Grant the store's user SELECT, INSERT, UPDATE, DELETE"):
        store.set("k", 1)
    store.close()


class _CountingCursor:
    count = 0

    @classmethod
    def make(cls) -> type:
        import psycopg

        class Cursor(psycopg.Cursor[Any]):
            def execute(self, *args: Any, **kwargs: Any) -> Any:
                cls.count += 1
                return super().execute(*args, **kwargs)

        return Cursor


def test_postgres_one_statement_per_operation_on_an_existing_pool(pg_url: str) -> None:
    """On an autocommit pool passed in, every operation is one statement (the first use adds the schema check)."""
    import psycopg_pool

    from reliable.stores.postgres import PostgresStore

    schema_table = pg_url.split("?")[1]
    kwargs = {"autocommit": True, "cursor_factory": _CountingCursor.make()}
    with psycopg_pool.ConnectionPool(servers.POSTGRES_URL, kwargs=kwargs, min_size=1, open=True) as pool:
        options = dict(part.split("=") for part in schema_table.split("&"))
        store = PostgresStore(pool, **options)
        store.now()
        counts = []
        for operation, args, kwargs_ in [
            ("put_if_absent", ("k", 1), {"ttl": 60}),
            ("get", ("k",), {}),
            ("compare_and_set", ("k", 2), {"version": 0}),
            ("set", ("j", 1), {}),
            ("incr", ("n",), {}),
            ("scan", ("",), {}),
            ("delete", ("j",), {}),
            ("now", (), {}),
        ]:
            before = _CountingCursor.count
            getattr(store, operation)(*args, **kwargs_)
            counts.append(_CountingCursor.count - before)
        store.close()

        assert [1] * 8 == counts
        assert not pool.closed


def test_postgres_existing_connections(pg_url: str) -> None:
    """A psycopg.Connection (even without autocommit) and an AsyncConnection passed in work and stay open."""
    import psycopg

    from reliable.stores.postgres import PostgresStore

    options = dict(part.split("=") for part in pg_url.split("?")[1].split("&"))
    conn = psycopg.connect(servers.POSTGRES_URL)
    store = PostgresStore(conn, **options)
    first = store.set("k", 1)
    threaded = asyncio.run(store.aget("k"))
    store.close()

    async def main() -> Any:
        aconn = await psycopg.AsyncConnection.connect(servers.POSTGRES_URL, autocommit=True)
        astore = PostgresStore(aconn, **options)
        got = await astore.aincr("n", 5)
        with pytest.raises(ConfigError, match="a\\* methods"):
            astore.get("k")
        await astore.aclose()
        closed = aconn.closed
        await aconn.close()
        return got, closed

    assert (first, (5, False), False) == (threaded, asyncio.run(main()), conn.closed)
    conn.close()


def test_postgres_expired_rows_are_purged_by_later_writes(pg_url: str) -> None:
    """Expired rows are deleted by later writes (no daemon): only live rows stay in the table."""
    store = servers.open_url(pg_url)
    with installed(FakeClock()) as clock:
        for i in range(10):
            store.set(f"old:{i}", i, ttl=5)
        clock.advance(6)
        store.set("new", 1)

    with admin() as conn:
        rows = conn.execute(f"SELECT convert_from(key, 'UTF8') FROM {store.table}").fetchall()

    assert [("new",)] == rows
    store.close()


# -- both servers ------------------------------------------------------------------------------------------


@pytest.fixture(params=["redis", "postgres"])
def server(request: pytest.FixtureRequest) -> str:
    """The kind of server."""
    name = str(request.param)
    require(servers.redis_unavailable() if name == "redis" else servers.postgres_unavailable())
    return name


def _unreachable(server: str) -> Any:
    port = free_port()
    if server == "redis":
        from reliable.stores.redis import RedisStore

        return RedisStore(f"redis://:hunter2@127.0.0.1:{port}/0", timeout=0.5), f"127.0.0.1:{port}"
    from reliable.stores.postgres import PostgresStore

    return PostgresStore(f"postgresql://postgres:hunter2@127.0.0.1:{port}/test", timeout=0.5), f"127.0.0.1:{port}"


@pytest.mark.parametrize("operation", ["get", "put_if_absent", "incr"])
def test_unreachable_server_raises_store_unavailable(server: str, mode: str, operation: str) -> None:
    """No server at the address: StoreUnavailableError naming the address (never the password), chained, not applied."""
    store, address = _unreachable(server)
    args = {"get": ("k",), "put_if_absent": ("k", 1), "incr": ("k",)}[operation]

    with pytest.raises(StoreUnavailableError) as info:
        call(store, mode, operation, *args)

    error = info.value
    assert (True, False, False, operation) == (
        address in str(error),
        "hunter2" in str(error),
        error.maybe_applied,
        error.operation,
    )
    assert error.__cause__ is not None
    store.close()


def test_store_made_in_one_event_loop_works_in_others(server: str) -> None:
    """Async clients are per event loop: one store serves several asyncio.run() calls, and blocking calls between."""
    store = servers.open_url(servers.redis_url() if server == "redis" else servers.postgres_url())

    results = [asyncio.run(store.aincr("n")) for _ in range(3)]
    results.append(store.incr("n"))
    results.append(asyncio.run(store.aincr("n")))

    assert [1, 2, 3, 4, 5] == results
    store.close()


def _use_in_child(store: Any, queue: Any) -> None:
    queue.put((store.incr("n"), store.get("n").value))


def test_store_used_before_fork_works_in_the_child_and_the_parent(server: str) -> None:
    """A store whose connections were opened before a fork opens its own in the child; the parent's keep working."""
    store = servers.open_url(servers.redis_url() if server == "redis" else servers.postgres_url())
    store.incr("n")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (the pool's) is what we test
        child = context.Process(target=_use_in_child, args=(store, queue))
        child.start()
    from_child = queue.get(timeout=30)
    child.join(timeout=30)

    assert ((2, 2), 0, 3) == (from_child, child.exitcode, store.incr("n"))
    store.close()


def test_closed_store_raises_and_closing_twice_is_harmless(server: str, mode: str) -> None:
    """After close() every operation raises StoreUnavailableError naming the address; a second close() is a no-op."""
    store = servers.open_url(servers.redis_url() if server == "redis" else servers.postgres_url())
    call(store, mode, "set", "k", 1)
    call(store, mode, "close")
    call(store, mode, "close")

    with pytest.raises(StoreUnavailableError, match="closed"):
        call(store, mode, "get", "k")
