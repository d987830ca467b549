"""`RedisStore`: the store on a Redis server, shared by every process and host that uses it.

Needs ``pip install 'reliable[redis]'`` (redis-py 5 or newer).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import (
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.retry import Retry as SyncRetry

from .._errors import ConfigError, ReliableError, StoreError
from .._internal import _clock
from ._protocol import Record, Value
from ._redis_conn import (
    aclose_client,
    address,
    checked_client,
    checked_prefix,
    client_options,
    closed,
    not_sent,
    retry_read,
)
from ._redis_core import Call, Layout, not_a_counter
from ._redis_lua import NOT_A_COUNTER, SCRIPTS
from ._server import PerLoop, check_timeout, pop_query, redact, test_time, unavailable

__all__ = ["RedisStore"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"


class RedisStore:
    """A `reliable.stores.Store` and `reliable.stores.AsyncStore` on Redis.

    Every operation is one Lua script run (one round trip), atomic on the server. Time is
    the server's (``TIME``), so leases and TTLs do not depend on the clocks of the hosts;
    versions come from one store-wide counter, so they only grow and are never reused.
    Expired records are invisible at once and deleted by later writes; Redis's own key
    expiry is the backstop.

    Args:
        url: ``redis://[user:password@]host:6379/0``, ``rediss://…`` (TLS) or
            ``unix:///path/to/redis.sock``; a ``prefix`` query parameter sets *prefix*.
            Or an existing ``redis.Redis`` (then the async methods run it in a thread) or
            ``redis.asyncio.Redis`` (then only the async methods work). Clients must not
            decode responses, and should not retry commands (see Raises).
        prefix: Prefix of every Redis key the store writes; one prefix is one store. Use a
            hash tag such as ``"{reliable}:"`` on Redis Cluster, so all keys share a slot.
        timeout: Seconds to wait to connect and for each reply before giving up.
        clock: Use this clock's time instead of the server's unless it is the system clock
            (default: the library clock, which is the system clock outside tests).

    Raises:
        ConfigError: a bad URL, prefix, timeout, or a client that decodes responses.
        reliable.StoreUnavailableError: (from every operation) the server cannot be reached.
            Its ``maybe_applied`` attribute is true when a write was sent but its reply was
            lost: it may or may not have happened, so read before doing it again. Reads are
            retried once on a new connection; writes never, because ``incr`` or a
            compare-and-set repeated after it succeeded would be applied twice. A client
            you pass that retries commands (redis-py's default) gets a warning.
        reliable.StoreError: the server refused the operation (e.g. ``incr`` on a non-counter).

    >>> store = RedisStore("redis://127.0.0.1:6379/0?prefix=doctest:")  # doctest: +SKIP

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url: str | redis.Redis | redis.asyncio.Redis = DEFAULT_URL,
        *,
        prefix: str | None = None,
        timeout: float = 5.0,
        clock: _clock.Clock | None = None,
    ) -> None:
        self._timeout = check_timeout(timeout)
        self._clock = clock
        self._lock = threading.Lock()
        self._client: Any = None
        self._aclient: Any = None
        self._url: str | None = None
        self._closed = False
        if isinstance(url, str):
            self._url, query = pop_query(url, ("prefix",))
            prefix = query.get("prefix", prefix) if prefix is None else prefix
            self.address = redact(self._url)
            self._options = client_options(self._url, self._timeout)
        elif isinstance(url, redis.asyncio.Redis):
            self._aclient = checked_client(url)
            self.address = address(url)
        elif isinstance(url, redis.Redis):
            self._client = checked_client(url)
            self.address = address(url)
        else:
            msg = f"url={url!r} is not a Redis URL or client; pass 'redis://host:6379/0' or a redis.Redis"
            raise ConfigError(msg, parameter="url", value=url)
        self._layout = Layout(checked_prefix("reliable:" if prefix is None else prefix))
        self._loops: PerLoop[Any] = PerLoop(self._open_async, aclose_client)

    @property
    def prefix(self) -> str:
        """The prefix of every key this store writes in Redis."""
        return self._layout.prefix

    def __repr__(self) -> str:
        return f"RedisStore({self.address!r}, prefix={self.prefix!r})"

    # -- drivers: the only code that does I/O --------------------------------------

    def _sync(self) -> Any:
        if self._closed:
            raise closed(self.address)
        if self._client is None:
            if self._url is None:
                msg = "this RedisStore was made from a redis.asyncio client; use the a* methods or pass a URL"
                raise ConfigError(msg, parameter="url")
            with self._lock:
                if self._client is None:
                    self._client = redis.Redis.from_url(self._url, retry=SyncRetry(NoBackoff(), 0), **self._options)
        return self._client

    async def _open_async(self) -> Any:
        return redis.asyncio.Redis.from_url(self._url or "", retry=AsyncRetry(NoBackoff(), 0), **self._options)

    def _run(self, call: Call) -> Any:
        client = self._sync()
        for attempt in (1, 2):
            try:
                if call.script is None:
                    return call.parse(client.execute_command("TIME"))
                sha, source = SCRIPTS[call.script]
                try:
                    reply = client.evalsha(sha, len(call.keys), *call.keys, *call.args)
                except NoScriptError:
                    reply = client.eval(source, len(call.keys), *call.keys, *call.args)
                return call.parse(reply)
            except RedisError as exc:
                if attempt == 1 and retry_read(call, exc):
                    continue
                raise self._fault(call, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arun(self, call: Call) -> Any:
        if self._closed:
            raise closed(self.address)
        if self._url is None and self._aclient is None:
            return await asyncio.to_thread(self._run, call)
        for attempt in (1, 2):
            try:
                client = self._aclient or await self._loops.get()
                if call.script is None:
                    return call.parse(await client.execute_command("TIME"))
                sha, source = SCRIPTS[call.script]
                try:
                    reply = await client.evalsha(sha, len(call.keys), *call.keys, *call.args)
                except NoScriptError:
                    reply = await client.eval(source, len(call.keys), *call.keys, *call.args)
                return call.parse(reply)
            except RedisError as exc:
                if attempt == 1 and retry_read(call, exc):
                    continue
                raise self._fault(call, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _fault(self, call: Call, exc: RedisError) -> ReliableError:
        if isinstance(exc, ResponseError) and NOT_A_COUNTER in str(exc):
            return not_a_counter(call.key, str(exc).replace(NOT_A_COUNTER, "").strip())
        if isinstance(exc, ReadOnlyError):  # a replica after a failover: nothing was written
            return unavailable("Redis", self.address, call.operation, call.key, exc, sent=False)
        if isinstance(exc, ResponseError):
            msg = f"Redis at {self.address} refused {call.operation}({call.key!r}): {exc}"
            return StoreError(msg, address=self.address, operation=call.operation, key=call.key)
        return unavailable("Redis", self.address, call.operation, call.key, exc, sent=not not_sent(exc))

    def _time(self) -> float | None:
        return test_time(self._clock)

    # -- Store ---------------------------------------------------------------------

    def now(self) -> float:
        return float(self._run(self._layout.now(self._time())))

    def get(self, key: str) -> Record | None:
        result: Record | None = self._run(self._layout.get(key, self._time()))
        return result

    def put_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        result: tuple[Record, bool] = self._run(self._layout.put_if_absent(key, value, ttl, self._time()))
        return result

    def compare_and_set(self, key: str, value: Value, *, version: int, ttl: float | None = None) -> Record | None:
        result: Record | None = self._run(self._layout.compare_and_set(key, value, version, ttl, self._time()))
        return result

    def set(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        result: Record = self._run(self._layout.set(key, value, ttl, self._time()))
        return result

    def delete(self, key: str, *, version: int | None = None) -> bool:
        return bool(self._run(self._layout.delete(key, version, self._time())))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return int(self._run(self._layout.incr(key, amount, ttl, self._time())))

    def scan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        call = self._layout.scan(prefix, limit, self._time())
        result: list[Record] = [] if call is None else self._run(call)
        return result

    def close(self) -> None:
        """Close the connections this store opened (a client you passed in stays open)."""
        self._closed = True
        self._loops.close_all()
        if self._url is not None and self._client is not None:
            self._client.close()

    # -- AsyncStore ------------------------------------------------------------------

    async def anow(self) -> float:
        return float(await self._arun(self._layout.now(self._time())))

    async def aget(self, key: str) -> Record | None:
        result: Record | None = await self._arun(self._layout.get(key, self._time()))
        return result

    async def aput_if_absent(self, key: str, value: Value, *, ttl: float | None = None) -> tuple[Record, bool]:
        result: tuple[Record, bool] = await self._arun(self._layout.put_if_absent(key, value, ttl, self._time()))
        return result

    async def acompare_and_set(
        self, key: str, value: Value, *, version: int, ttl: float | None = None
    ) -> Record | None:
        call = self._layout.compare_and_set(key, value, version, ttl, self._time())
        result: Record | None = await self._arun(call)
        return result

    async def aset(self, key: str, value: Value, *, ttl: float | None = None) -> Record:
        result: Record = await self._arun(self._layout.set(key, value, ttl, self._time()))
        return result

    async def adelete(self, key: str, *, version: int | None = None) -> bool:
        return bool(await self._arun(self._layout.delete(key, version, self._time())))

    async def aincr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return int(await self._arun(self._layout.incr(key, amount, ttl, self._time())))

    async def ascan(self, prefix: str, *, limit: int | None = None) -> list[Record]:
        call = self._layout.scan(prefix, limit, self._time())
        result: list[Record] = [] if call is None else await self._arun(call)
        return result

    async def aclose(self) -> None:
        """Close this event loop's connections, then the rest (a client you passed in stays open)."""
        await self._loops.aclose_current()
        self.close()
