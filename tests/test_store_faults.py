"""Server faults: a test-owned redis-server killed, paused and restarted; PostgreSQL sessions terminated with
``pg_terminate_backend`` (the shared server is never stopped) or cut by a test-owned TCP proxy.

Each fault shows `StoreUnavailableError` (with the address, and whether a write may have been applied),
then recovery with the same store object; and, one level up, that runs of `reliable.idempotent` calls and
`reliable.single_instance` lease renewals through the faults leave no key with two effects and never two
lock holders at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import reliable
import server_backends as servers
from reliable import StoreUnavailableError
from reliable.testing import FakeClock, installed
from reliable.testing._contract import _Awaited
from test_store_servers import MODES, admin, free_port, require

pytestmark = pytest.mark.processes


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll *check* in 10 ms real steps (servers start and stop in real time)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each fault through the blocking methods, and through the async twins on one event loop."""
    return str(request.param)


def view(store: Any, mode: str) -> Any:
    """*store* itself, or a blocking view of its async twins that keeps one event loop (and its connections)."""
    return store if mode == "sync" else _Awaited(store)


# -- a redis-server of our own ------------------------------------------------------------------------------


class RedisServer:
    """A redis-server on a free loopback port, with an append-only file so a restart keeps the data."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir",
             str(self.directory), "--appendonly", "yes", "--appendfsync", "always", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def commands(self, name: str) -> int:
        import redis

        client = redis.Redis(port=self.port)
        try:
            return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))
        finally:
            client.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server owned by this test, killed at teardown."""
    if shutil.which("redis-server") is None:
        require("redis-server is not installed")
    require(servers.redis_unavailable())  # redis-py is there
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.resume()
        server.kill()


def test_redis_killed_then_restarted(redis_server: RedisServer, mode: str) -> None:
    """Killed server: reads and writes raise StoreUnavailableError (address named, nothing applied); restarted:
    the same store works again, with its data (append-only file) and its scripts reloaded (EVAL after NOSCRIPT)."""
    from reliable.stores.redis import RedisStore

    store = view(RedisStore(redis_server.url, timeout=1), mode)
    store.set("k", 1)
    redis_server.kill()

    errors = []
    for operation, args in [("get", ("k",)), ("incr", ("k",)), ("put_if_absent", ("j", 1))]:
        with pytest.raises(StoreUnavailableError) as info:
            getattr(store, operation)(*args)
        errors.append((f"127.0.0.1:{redis_server.port}" in str(info.value), info.value.maybe_applied))
    redis_server.start()
    after = (store.incr("k"), store.get("j"))

    assert [(True, False)] * 3 == errors
    assert (2, None) == after
    assert 1 <= redis_server.commands("eval")
    store.close()


def test_redis_lost_reply_is_maybe_applied_and_not_retried(redis_server: RedisServer) -> None:
    """A write whose reply never comes (server paused past the timeout) raises with maybe_applied=True; it was in
    fact applied once when the server resumed, which is why the store never re-sends a write by itself."""
    from reliable.stores.redis import RedisStore

    store = RedisStore(redis_server.url, timeout=0.3)
    store.incr("n")
    redis_server.pause()
    with pytest.raises(StoreUnavailableError) as info:
        store.incr("n")
    redis_server.resume()

    assert (True, "incr", 2) == (info.value.maybe_applied, info.value.operation, store.get("n").value)
    store.close()


# -- PostgreSQL: terminated sessions and a cut connection ------------------------------------------------------


@pytest.fixture
def pg_app() -> str:
    """A URL with this test's own table and application_name, so its sessions can be found and terminated."""
    require(servers.postgres_unavailable())
    return servers.with_query(servers.postgres_url(), application_name=f"reliable-fault-{uuid.uuid4().hex[:10]}")


def terminate(url: str) -> int:
    """pg_terminate_backend every session of *url*'s application_name; return how many."""
    name = url.split("application_name=")[1]
    with admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = %s", [name]
        ).fetchall()
    return len(rows)


def test_postgres_terminated_idle_sessions_are_replaced(pg_app: str, mode: str) -> None:
    """Sessions terminated while idle are noticed before use: the next operations run on new ones, each once."""
    store = view(servers.open_url(pg_app), mode)
    store.incr("n")
    killed = terminate(pg_app)

    values = [store.incr("n") for _ in range(3)]

    assert (True, [2, 3, 4]) == (killed >= 1, values)
    store.close()


@contextlib.contextmanager
def row_locked(table: str, key: str) -> Iterator[Any]:
    """Hold the row of *key* locked from an admin session, so a store statement on it blocks."""
    with admin() as conn:
        conn.execute("BEGIN")
        conn.execute(f"SELECT 1 FROM {table} WHERE key = %s FOR UPDATE", [key.encode()])
        yield conn
        conn.execute("ROLLBACK")


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def waiting_sessions(url: str) -> int:
    name = url.split("application_name=")[1]
    with admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'", [name]
        ).fetchone()
    return int(row[0]) if row else 0


def test_postgres_session_terminated_mid_statement_is_sent_again(pg_app: str) -> None:
    """A write whose session is terminated while it runs was rolled back (the server said so), so it is sent again
    on a new session and applied once, however often that happens. Past max_connections + 1 tries it raises
    StoreUnavailableError with maybe_applied=False, and indeed nothing was applied."""
    from reliable.stores.postgres import PostgresStore

    store = PostgresStore(pg_app, max_connections=1)
    store.incr("n")
    outcomes = []
    for kills in (1, 2, 3):
        with row_locked(store.table, "n"):
            thread, out = in_thread(lambda: store.incr("n"))
            for _ in range(kills):
                wait_until(lambda: waiting_sessions(pg_app) == 1, "an incr to wait on the row lock")
                terminate(pg_app)
            thread.join(timeout=10 if kills == 3 else 0.01)
        thread.join(timeout=10)
        result = out[0]
        outcomes.append(result if isinstance(result, int) else (type(result), result.maybe_applied))

    assert [2, 3, (StoreUnavailableError, False)] == outcomes
    assert 3 == store.get("n").value
    store.close()


class Proxy:
    """A TCP proxy on a free loopback port in front of PostgreSQL: `cut` drops every connection without a word."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets = []

    def stop(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked in the proxy's thread
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        self.cut()


@pytest.fixture
def proxied(pg_app: str) -> Iterator[tuple[str, Proxy]]:
    """(URL through a test-owned proxy, the proxy)."""
    parts = servers.POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
    host, _, port = parts.partition(":")
    proxy = Proxy((host, int(port or 5432)))
    proxy.start()
    yield pg_app.replace(parts, f"127.0.0.1:{proxy.port}", 1), proxy
    proxy.stop()


def test_postgres_connection_cut_mid_write_is_maybe_applied(proxied: tuple[str, Proxy]) -> None:
    """A connection that dies without a reply leaves a write's outcome unknown: maybe_applied=True, and indeed the
    server finished it. The store does not re-send it; the next call works on a new connection."""
    url, proxy = proxied
    store = servers.open_url(url)
    store.incr("n")
    with row_locked(store.table, "n"):
        thread, out = in_thread(lambda: store.incr("n"))
        wait_until(lambda: waiting_sessions(url) == 1, "the incr to wait on the row lock")
        proxy.cut()
        thread.join(timeout=10)
    wait_until(lambda: waiting_sessions(url) == 0, "the orphaned incr to finish")
    error = out[0]

    assert (StoreUnavailableError, True) == (type(error), error.maybe_applied)
    assert 3 == store.incr("n")
    store.close()


def test_postgres_unreachable_then_back(proxied: tuple[str, Proxy], mode: str) -> None:
    """Nothing listening: StoreUnavailableError naming the proxy's address, nothing applied; listening again: the
    same store works."""
    url, proxy = proxied
    from reliable.stores.postgres import PostgresStore

    store = view(PostgresStore(url.replace("application_name", "connect_timeout=2&application_name"), timeout=1), mode)
    store.set("k", 1)
    proxy.stop()

    with pytest.raises(StoreUnavailableError) as info:
        store.set("k", 2)
    proxy.start()
    after = store.get("k").value

    assert (True, False, 1) == (f"127.0.0.1:{proxy.port}" in str(info.value), info.value.maybe_applied, after)
    store.close()


# -- the primitives through faults ------------------------------------------------------------------------------------


def _fault_store(kind: str, redis_server: RedisServer | None) -> tuple[Any, Callable[[], None]]:
    """A store and a function that injects one fault into it."""
    if kind == "redis":
        assert redis_server is not None
        from reliable.stores.redis import RedisStore

        def restart() -> None:
            redis_server.kill()
            redis_server.start()

        return RedisStore(redis_server.url, timeout=1), restart
    url = servers.with_query(servers.postgres_url(), application_name=f"reliable-fault-{uuid.uuid4().hex[:10]}")
    return servers.open_url(url), lambda: terminate(url) and None


@pytest.fixture(params=["redis", "postgres"])
def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Callable[[], None]]]:
    """(store, inject one fault): a test-owned redis-server killed and restarted, or PostgreSQL sessions terminated."""
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        store, fault = _fault_store("redis", server)
    else:
        require(servers.postgres_unavailable())
        store, fault = _fault_store("postgres", None)
    yield store, fault
    store.close()


KEYS = 60


def other_holder_gets(lock: Any) -> bool:
    """Whether another holder (another thread) can take *lock* right now; it lets it go at once."""
    got: list[bool] = []

    def attempt() -> None:
        lease = lock.acquire()
        got.append(lease is not reliable.SKIPPED)
        if lease is not reliable.SKIPPED:
            lease.release()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(timeout=30)
    return got[0]


def test_idempotent_calls_through_faults_have_one_effect_per_key(faulty: tuple[Any, Callable[[], None]]) -> None:
    """A run of idempotent calls with faults between them (server restarted / sessions terminated every few keys,
    each key also called again): calls that hit a dead server fail before running and are called again, and in
    the end every key ran exactly once and replays return its result."""
    store, fault = faulty
    effects: Counter[str] = Counter()

    @reliable.idempotent(store=store, key=lambda key: key, name="faults")
    def work(key: str) -> str:
        effects[key] += 1
        return f"done {key}"

    results: dict[str, str] = {}
    failures = 0
    with installed(FakeClock()):
        for i in range(KEYS):
            if i % 10 == 5:
                fault()
            key = f"order:{i}"
            for _ in range(20):
                try:
                    results[key] = work(key)
                    break
                except StoreUnavailableError:
                    failures += 1
            assert work(key) == results[key]

    assert {f"order:{i}": 1 for i in range(KEYS)} == dict(effects)
    assert {f"order:{i}": f"done order:{i}" for i in range(KEYS)} == results


def test_async_idempotent_calls_through_session_kills(faulty: tuple[Any, Callable[[], None]]) -> None:
    """The same through the async twins, with faults injected while the calls run concurrently."""
    store, fault = faulty
    effects: Counter[str] = Counter()

    @reliable.idempotent(store=store, key=lambda key: key, name="afaults")
    async def work(key: str) -> str:
        effects[key] += 1
        await asyncio.sleep(0)
        return f"done {key}"

    async def call_until_done(key: str) -> str:
        for _ in range(20):
            try:
                return await work(key)
            except StoreUnavailableError:
                await asyncio.sleep(0.01)
        raise AssertionError(f"{key} never got through")

    async def main() -> list[str]:
        results: list[str] = []
        for batch in range(6):
            if batch:
                await asyncio.to_thread(fault)
            keys = [f"order:{batch}:{i}" for i in range(10)]
            results += await asyncio.gather(*(call_until_done(key) for key in keys))
        return results

    with installed(FakeClock()):
        results = asyncio.run(main())

    assert (60, {1}) == (len(results), set(effects.values()))


def test_lock_renewals_through_faults_never_overlap(faulty: tuple[Any, Callable[[], None]]) -> None:
    """A holder keeps renewing its lease through faults shorter than its TTL, and nobody else gets the lock;
    when the store is gone for longer than the TTL, the holder knows it lost the lock before anyone else holds it."""
    store, fault = faulty
    name = f"job-{uuid.uuid4().hex[:8]}"
    lock = reliable.single_instance(name, store=store, ttl=30, on_conflict="skip")
    overlaps: list[float] = []
    with installed(FakeClock()) as clock:
        lease = lock.acquire()
        assert isinstance(lease, reliable.Lease)
        for step in range(12):  # 12 x 5 s = two TTLs, a fault every 15 s
            if step % 3 == 1:
                fault()
            clock.advance(5)
            wait_until(lambda: lease._next_renew > clock.monotonic() or lease.lost, "the renewer to catch up")
            if other_holder_gets(lock) and not lease.lost:
                overlaps.append(clock.time())
        kept = not lease.lost
        lease.release()

    assert ([], True) == (overlaps, kept)


def test_lock_holder_learns_it_lost_the_lock_before_another_holds_it(redis_server: RedisServer) -> None:
    """Store down for longer than the TTL: the holder's lease is marked lost at the TTL (its renewals failed) while
    the store is still down; once it is back (with the old lease, now expired), another holder takes the lock."""
    from reliable.stores.redis import RedisStore

    store = RedisStore(redis_server.url, timeout=1)
    lock = reliable.single_instance("long-outage", store=store, ttl=30, on_conflict="skip")
    with installed(FakeClock()) as clock:
        lease = lock.acquire()
        assert isinstance(lease, reliable.Lease)
        redis_server.kill()
        for _ in range(8):  # 40 s of store outage, renewals failing
            clock.advance(5)
            time.sleep(0.02)
        lost_during_outage = lease.lost
        redis_server.start()
        lease.release()  # what a holder does when it learns the lock is lost: stop and leave the block
        got_it = other_holder_gets(lock)

    assert (True, True) == (lost_during_outage, got_it)
    store.close()


def test_idempotent_faults_while_the_function_runs(faulty: tuple[Any, Callable[[], None]]) -> None:
    """Faults injected inside the function, between the claim and the stored result (server restarted / sessions
    terminated): the result is still stored on a new connection, so every key ran once and replays match."""
    store, fault = faulty
    effects: Counter[str] = Counter()

    @reliable.idempotent(store=store, key=lambda key: key, name="inside")
    def work(key: str) -> str:
        effects[key] += 1
        fault()
        return f"done {key}"

    with installed(FakeClock()):
        results = [work(f"k{i}") for i in range(5)]
        replays = [work(f"k{i}") for i in range(5)]

    assert (results, {1}) == (replays, set(effects.values()))


def test_idempotent_store_down_when_the_result_is_stored(redis_server: RedisServer) -> None:
    """The store is down when the function returns: the call raises StoreUnavailableError (the effect happened, the
    result was not stored, and the store says the write was not applied). Called again once the store is back,
    the key must not run a second time: this process kept the completion and stores it first."""
    from reliable.stores.redis import RedisStore

    store = RedisStore(redis_server.url, timeout=1)
    effects: Counter[str] = Counter()

    @reliable.idempotent(store=store, key=lambda key: key, name="down", lease=30)
    def work(key: str) -> str:
        effects[key] += 1
        if effects[key] == 1:
            redis_server.kill()
        return f"done {key}"

    with installed(FakeClock()):
        with pytest.raises(StoreUnavailableError) as info:
            work("k")
        redis_server.start()
        again = work("k")

    assert (False, "done k", 1) == (info.value.maybe_applied, again, effects["k"])
    store.close()
