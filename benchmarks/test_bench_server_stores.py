"""RedisStore and PostgresStore per operation, next to the raw client floor and the peers, in one process.

Run: ``pytest benchmarks/test_bench_server_stores.py --benchmark-only -p no:cacheprovider
--benchmark-min-time=0.05 --benchmark-max-time=0.5``

Every label ends with the round trips one call makes, counted (outside the timing) by a
redis-py connection class that records each command it sends, and by a psycopg cursor that
records each statement (autocommit: one statement is one round trip; psycopg also prepares a
statement once per connection, on its fifth use, which is not counted).

Baselines (the floor): the raw redis-py command (``GET``, ``SET NX PX``, ``SET``, ``INCR``)
and one psycopg statement doing the same on a plain table, each on a warm connection. Peers:
Powertools' Redis idempotency layer (``idempotent_function`` with ``RedisCachePersistenceLayer``)
for a new key and a replay, and python-redis-lock for acquire + release. Servers come from
``RELIABLE_TEST_REDIS_URL`` / ``RELIABLE_TEST_POSTGRES_URL``; a group is skipped when its server
or a peer is missing.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import reliable

REDIS_URL = __import__("os").environ.get("RELIABLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = __import__("os").environ.get("RELIABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
VALUE = {"state": "done", "result": [1, 2, 3]}
PAYLOAD = b'{"state":"done","result":[1,2,3]}'
TTL = 3600.0


def _unique() -> Callable[[], str]:
    counter = itertools.count()
    run = uuid.uuid4().hex[:8]
    return lambda: f"{run}:{next(counter)}"


# -- counting round trips ------------------------------------------------------------------------------


class Sent:
    """Commands or statements sent, counted by the wrapped connection and cursor classes."""

    count = 0


def round_trips(call: Callable[[], Any], times: int = 40) -> float:
    call()
    before = Sent.count
    for _ in range(times):
        call()
    return (Sent.count - before) / times


def _run(benchmark: Any, group: str, label: str, call: Callable[[], Any], *, baseline: bool = False) -> None:
    trips = round_trips(call)
    benchmark.group = group
    benchmark.extra_info["label"] = f"{label} [{trips:g} round trips]"
    benchmark.extra_info["round_trips"] = trips
    if baseline:
        benchmark.extra_info["baseline"] = True
    benchmark(call)


# -- Redis ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_client() -> Iterator[Any]:
    redis = pytest.importorskip("redis")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    class Counting(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            Sent.count += 1
            super().send_packed_command(command, check_health)

    pool = redis.ConnectionPool.from_url(REDIS_URL, connection_class=Counting, retry=Retry(NoBackoff(), 0))
    client = redis.Redis(connection_pool=pool)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
    prefix = f"reliable-bench:{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


@pytest.fixture(scope="module")
def redis_store(redis_client: tuple[Any, str]) -> Iterator[Any]:
    from reliable.stores.redis import RedisStore

    client, prefix = redis_client
    store = RedisStore(client, prefix=prefix + "store:")
    yield store
    store.close()


REDIS_GROUPS = {
    "get": "redis: read one key",
    "put": "redis: create a key (SET NX / put_if_absent)",
    "cas": "redis: replace at a version (compare_and_set)",
    "incr": "redis: incr",
    "idem_new": "redis: idempotent call, new key",
    "idem_replay": "redis: idempotent call, replay",
    "lock": "redis: lock acquire + release",
}


@pytest.mark.parametrize("who", ["raw", "store"])
def test_redis_get(benchmark: Any, redis_client: tuple[Any, str], redis_store: Any, who: str) -> None:
    client, prefix = redis_client
    client.set(prefix + "raw:get", PAYLOAD)
    redis_store.set("get", VALUE)
    if who == "raw":
        _run(
            benchmark,
            REDIS_GROUPS["get"],
            "redis-py GET (floor)",
            lambda: client.get(prefix + "raw:get"),
            baseline=True,
        )
    else:
        _run(benchmark, REDIS_GROUPS["get"], "RedisStore.get", lambda: redis_store.get("get"))


@pytest.mark.parametrize("who", ["raw", "store"])
def test_redis_put_if_absent(benchmark: Any, redis_client: tuple[Any, str], redis_store: Any, who: str) -> None:
    client, prefix = redis_client
    key = _unique()
    if who == "raw":
        call = lambda: client.set(prefix + "raw:" + key(), PAYLOAD, nx=True, px=3_600_000)  # noqa: E731
        _run(benchmark, REDIS_GROUPS["put"], "redis-py SET NX PX (floor)", call, baseline=True)
    else:
        _run(
            benchmark,
            REDIS_GROUPS["put"],
            "RedisStore.put_if_absent",
            lambda: redis_store.put_if_absent(key(), VALUE, ttl=TTL),
        )


@pytest.mark.parametrize("who", ["raw", "store"])
def test_redis_compare_and_set(benchmark: Any, redis_client: tuple[Any, str], redis_store: Any, who: str) -> None:
    client, prefix = redis_client
    if who == "raw":
        call = lambda: client.set(prefix + "raw:cas", PAYLOAD, px=3_600_000)  # noqa: E731
        _run(benchmark, REDIS_GROUPS["cas"], "redis-py SET PX (floor, no version check)", call, baseline=True)
        return
    current = [redis_store.set("cas", VALUE).version]

    def cas() -> None:
        current[0] = redis_store.compare_and_set("cas", VALUE, version=current[0], ttl=TTL).version

    _run(benchmark, REDIS_GROUPS["cas"], "RedisStore.compare_and_set", cas)


@pytest.mark.parametrize("who", ["raw", "store"])
def test_redis_incr(benchmark: Any, redis_client: tuple[Any, str], redis_store: Any, who: str) -> None:
    client, prefix = redis_client
    if who == "raw":
        _run(
            benchmark,
            REDIS_GROUPS["incr"],
            "redis-py INCR (floor)",
            lambda: client.incr(prefix + "raw:n"),
            baseline=True,
        )
    else:
        _run(benchmark, REDIS_GROUPS["incr"], "RedisStore.incr", lambda: redis_store.incr("n"))


def _powertools(client: Any, prefix: str) -> Callable[..., Any]:
    pytest.importorskip(
        "aws_lambda_powertools.utilities.idempotency", reason="aws-lambda-powertools[redis] not installed"
    )
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.persistence.redis import RedisCachePersistenceLayer

    layer = RedisCachePersistenceLayer(client=client)
    config = IdempotencyConfig(event_key_jmespath="id", use_local_cache=False, expires_after_seconds=3600)

    @idempotent_function(data_keyword_argument="order", persistence_store=layer, config=config, key_prefix=prefix)
    def handle(order: dict[str, Any]) -> dict[str, Any]:
        return {"handled": order["id"]}

    return handle


def _reliable_idempotent(store: Any) -> Callable[..., Any]:
    @reliable.idempotent(store=store, key=lambda order: order["id"], name="bench", fingerprint=False)
    def handle(order: dict[str, Any]) -> dict[str, Any]:
        return {"handled": order["id"]}

    return handle


@pytest.mark.parametrize("who", ["raw", "powertools", "reliable"])
def test_redis_idempotent_new_key(benchmark: Any, redis_client: tuple[Any, str], redis_store: Any, who: str) -> None:
    client, prefix = redis_client
    key = _unique()
    group = REDIS_GROUPS["idem_new"]
    if who == "raw":

        def floor() -> None:  # claim with SET NX PX, then store the result with SET: the least a new key needs
            k = prefix + "raw:idem:" + key()
            client.set(k, b"in progress", nx=True, px=60_000)
            client.set(k, PAYLOAD, px=3_600_000)

        _run(benchmark, group, "redis-py SET NX PX + SET (floor)", floor, baseline=True)
    elif who == "powertools":
        handle = _powertools(client, prefix + "pt")
        _run(benchmark, group, "Powertools idempotent_function (Redis)", lambda: handle(order={"id": key()}))
    else:
        handle = _reliable_idempotent(redis_store)
        _run(benchmark, group, "reliable.idempotent (RedisStore)", lambda: handle({"id": key()}))


@pytest.mark.parametrize("who", ["raw", "powertools", "reliable"])
def test_redis_idempotent_replay(benchmark: Any, redis_client: tuple[Any, str], redis_store: Any, who: str) -> None:
    client, prefix = redis_client
    group = REDIS_GROUPS["idem_replay"]
    if who == "raw":
        client.set(prefix + "raw:done", PAYLOAD)
        _run(benchmark, group, "redis-py GET (floor)", lambda: client.get(prefix + "raw:done"), baseline=True)
        return
    handle = _powertools(client, prefix + "pt") if who == "powertools" else _reliable_idempotent(redis_store)
    order = {"id": "replayed"}
    if who == "powertools":
        handle(order=order)
        _run(benchmark, group, "Powertools idempotent_function (Redis)", lambda: handle(order=order))
    else:
        handle(order)
        _run(benchmark, group, "reliable.idempotent (RedisStore)", lambda: handle(order))


@pytest.mark.parametrize("who", ["raw", "python-redis-lock", "store", "reliable"])
def test_redis_lock(benchmark: Any, redis_client: tuple[Any, str], redis_store: Any, who: str) -> None:
    client, prefix = redis_client
    group = REDIS_GROUPS["lock"]
    if who == "raw":

        def floor() -> None:
            client.set(prefix + "raw:lock", b"me", nx=True, px=60_000)
            client.delete(prefix + "raw:lock")

        _run(benchmark, group, "redis-py SET NX PX + DEL (floor)", floor, baseline=True)
    elif who == "python-redis-lock":
        redis_lock = pytest.importorskip("redis_lock", reason="python-redis-lock not installed")

        def peer() -> None:
            lock = redis_lock.Lock(client, prefix + "prl", expire=60)
            lock.acquire()
            lock.release()

        _run(benchmark, group, "python-redis-lock Lock.acquire + release", peer)
    elif who == "store":

        def store_lease() -> None:  # what a lock needs of the store: claim with a TTL, release at the version
            record, _ = redis_store.put_if_absent("lock", "me", ttl=60)
            redis_store.delete("lock", version=record.version)

        _run(benchmark, group, "RedisStore.put_if_absent + delete", store_lease)
    else:
        _run(benchmark, group, "reliable.single_instance (RedisStore)", _single_instance(redis_store))


def _single_instance(store: Any) -> Callable[[], None]:
    """Acquire + release of an uncontended store lease (ttl=60: no renewal falls inside a run)."""
    lock = reliable.single_instance(f"bench-{uuid.uuid4().hex[:6]}", store=store, ttl=60, on_conflict="raise")

    def primitive() -> None:
        with lock:
            pass

    return primitive


# -- PostgreSQL --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[tuple[Any, Any]]:
    psycopg = pytest.importorskip("psycopg")
    pytest.importorskip("psycopg_pool")
    from reliable.stores.postgres import PostgresStore

    class Counting(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            Sent.count += 1
            return super().execute(*args, **kwargs)

    try:
        raw = psycopg.connect(POSTGRES_URL, autocommit=True, cursor_factory=Counting)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} unreachable: {exc}")
    schema = f"reliable_bench_{uuid.uuid4().hex[:8]}"
    raw.execute(f"CREATE SCHEMA {schema}")
    raw.execute(f"CREATE TABLE {schema}.raw (key bytea PRIMARY KEY, value bytea NOT NULL, version bigint NOT NULL)")
    store_conn = psycopg.connect(POSTGRES_URL, autocommit=True, cursor_factory=Counting)
    store = PostgresStore(store_conn, schema=schema, table="store")
    store.migrate()
    yield raw, store
    store.close()
    store_conn.close()
    raw.execute(f"DROP SCHEMA {schema} CASCADE")
    raw.close()


PG_GROUPS = {
    "get": "postgres: read one key",
    "put": "postgres: create a key (INSERT / put_if_absent)",
    "cas": "postgres: replace at a version (compare_and_set)",
    "incr": "postgres: incr",
    "lock": "postgres: lock acquire + release",
}


def _sql(raw: Any, text: str) -> Callable[..., Any]:
    schema = raw.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'reliable_bench_%' ORDER BY oid DESC LIMIT 1"
    )
    name = schema.fetchone()[0]
    statement = text.replace("{t}", f"{name}.raw").encode()

    def run(*params: Any) -> Any:
        return raw.cursor(binary=True).execute(statement, params).fetchall()

    return run


@pytest.mark.parametrize("who", ["raw", "store"])
def test_postgres_get(benchmark: Any, pg: tuple[Any, Any], who: str) -> None:
    raw, store = pg
    if who == "raw":
        _sql(raw, "INSERT INTO {t} VALUES ('\\x6b', %s, 1) ON CONFLICT DO NOTHING RETURNING 1")(PAYLOAD)
        select = _sql(raw, "SELECT value, version FROM {t} WHERE key = %s")
        _run(benchmark, PG_GROUPS["get"], "psycopg SELECT (floor)", lambda: select(b"k"), baseline=True)
    else:
        store.set("get", VALUE)
        _run(benchmark, PG_GROUPS["get"], "PostgresStore.get", lambda: store.get("get"))


@pytest.mark.parametrize("who", ["raw", "store"])
def test_postgres_put_if_absent(benchmark: Any, pg: tuple[Any, Any], who: str) -> None:
    raw, store = pg
    key = _unique()
    if who == "raw":
        insert = _sql(raw, "INSERT INTO {t} VALUES (%s, %s, 1) ON CONFLICT DO NOTHING RETURNING version")
        _run(
            benchmark,
            PG_GROUPS["put"],
            "psycopg INSERT ON CONFLICT DO NOTHING (floor)",
            lambda: insert(key().encode(), PAYLOAD),
            baseline=True,
        )
    else:
        _run(
            benchmark,
            PG_GROUPS["put"],
            "PostgresStore.put_if_absent",
            lambda: store.put_if_absent(key(), VALUE, ttl=TTL),
        )


@pytest.mark.parametrize("who", ["raw", "store"])
def test_postgres_compare_and_set(benchmark: Any, pg: tuple[Any, Any], who: str) -> None:
    raw, store = pg
    if who == "raw":
        _sql(raw, "INSERT INTO {t} VALUES ('\\x636173', %s, 1) ON CONFLICT DO NOTHING RETURNING 1")(PAYLOAD)
        update = _sql(raw, "UPDATE {t} SET value = %s, version = version + 1 WHERE key = %s RETURNING version")
        _run(
            benchmark,
            PG_GROUPS["cas"],
            "psycopg UPDATE RETURNING (floor)",
            lambda: update(PAYLOAD, b"cas"),
            baseline=True,
        )
        return
    current = [store.set("cas", VALUE).version]

    def cas() -> None:
        current[0] = store.compare_and_set("cas", VALUE, version=current[0], ttl=TTL).version

    _run(benchmark, PG_GROUPS["cas"], "PostgresStore.compare_and_set", cas)


@pytest.mark.parametrize("who", ["raw", "store"])
def test_postgres_incr(benchmark: Any, pg: tuple[Any, Any], who: str) -> None:
    raw, store = pg
    if who == "raw":
        _sql(raw, "INSERT INTO {t} VALUES ('\\x6e', '\\x30', 1) ON CONFLICT DO NOTHING RETURNING 1")()
        bump = _sql(raw, "UPDATE {t} SET version = version + 1 WHERE key = '\\x6e' RETURNING version")
        _run(benchmark, PG_GROUPS["incr"], "psycopg UPDATE n = n + 1 RETURNING (floor)", bump, baseline=True)
    else:
        _run(benchmark, PG_GROUPS["incr"], "PostgresStore.incr", lambda: store.incr("n"))


@pytest.mark.parametrize("who", ["raw", "store", "reliable"])
def test_postgres_lock(benchmark: Any, pg: tuple[Any, Any], who: str) -> None:
    raw, store = pg
    group = PG_GROUPS["lock"]
    if who == "raw":
        insert = _sql(raw, "INSERT INTO {t} VALUES ('\\x6c6f636b', %s, 1) ON CONFLICT DO NOTHING RETURNING version")
        delete = _sql(raw, "DELETE FROM {t} WHERE key = '\\x6c6f636b' AND version = %s RETURNING 1")

        def floor() -> None:
            insert(b"me")
            delete(1)

        _run(benchmark, group, "psycopg INSERT ON CONFLICT DO NOTHING + DELETE (floor)", floor, baseline=True)
    elif who == "store":

        def store_lease() -> None:
            record, _ = store.put_if_absent("lock", "me", ttl=60)
            store.delete("lock", version=record.version)

        _run(benchmark, group, "PostgresStore.put_if_absent + delete", store_lease)
    else:
        _run(benchmark, group, "reliable.single_instance (PostgresStore)", _single_instance(store))


# -- the library's own work, without the network ---------------------------------------------------------------

OWN = "server stores: own work per call, no I/O (build the request, read the reply)"


@pytest.mark.parametrize("who", ["redis", "postgres"])
def test_own_work_per_call(benchmark: Any, who: str) -> None:
    """What the store adds to the client's own call: argument checks, JSON, the request, the Record."""
    benchmark.group = OWN
    if who == "redis":
        from reliable.stores._redis_core import Layout

        layout = Layout("bench:")
        reply = [0, b"7", b"1795900000000000", b"1", PAYLOAD]

        def redis_work() -> Any:
            return layout.put_if_absent("order:1", VALUE, TTL, None).parse(reply)

        benchmark.extra_info["label"] = "RedisStore.put_if_absent: Layout + parse"
        benchmark(redis_work)
    else:
        from reliable.stores._postgres_core import Statements

        statements = Statements("public", "bench")
        rows = [(False, PAYLOAD, True, 7, 1795900000.0)]

        def pg_work() -> Any:
            return statements.put_if_absent("order:1", VALUE, TTL, None).parse(rows, 1)

        benchmark.extra_info["label"] = "PostgresStore.put_if_absent: Statements + parse"
        benchmark(pg_work)
