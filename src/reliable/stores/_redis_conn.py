"""`RedisStore`'s client handling: options for the clients it makes, checks of the ones it is given, faults."""

from __future__ import annotations

import os
import warnings
from typing import Any

import redis
from redis.exceptions import AuthenticationError, BusyLoadingError, RedisError

from .._errors import ConfigError, ReliableError
from ._redis_core import Call
from ._server import WRITES, redact


def client_options(url: str, timeout: float) -> dict[str, Any]:
    """redis-py options for the clients the store makes: raw bytes, bounded waits, and no retries.

    redis-py retries commands on connection errors by default (10 times); a re-sent
    ``incr`` or compare-and-set whose first reply was lost would be applied twice.
    """
    if not url.lower().startswith(("redis://", "rediss://", "unix://")):
        msg = f"url={redact(url)!r} is not a Redis URL; pass 'redis://host:6379/0', 'rediss://…' or 'unix:///path'"
        raise ConfigError(msg, parameter="url", value=redact(url))
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "client_name": f"reliable-{os.getpid()}",
        "decode_responses": False,
    }


def checked_client(client: Any) -> Any:
    kwargs = client.get_connection_kwargs()
    if kwargs.get("decode_responses"):
        msg = (
            "the Redis client decodes responses, so bytes values would break; pass a client with decode_responses=False"
        )
        raise ConfigError(msg, parameter="url")
    retry = kwargs.get("retry")
    if retry is not None and retry.get_retries() > 0:
        warnings.warn(
            f"this Redis client retries commands ({retry.get_retries()} times); a write re-sent after a lost reply "
            "may be applied twice (incr, compare-and-set). Pass a client made with retry=Retry(NoBackoff(), 0)",
            stacklevel=3,
        )
    return client


def address(client: Any) -> str:
    kwargs = client.get_connection_kwargs()
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def checked_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix or len(prefix) > 256:
        msg = f"prefix={prefix!r} is invalid; pass a non-empty str of at most 256 characters, e.g. 'myapp:reliable:'"
        raise ConfigError(msg, parameter="prefix", value=prefix)
    return prefix


def retry_read(call: Call, exc: RedisError) -> bool:
    """Reads are retried once after a lost connection (a pooled one the server dropped, say)."""
    return call.operation not in WRITES and isinstance(exc, redis.ConnectionError)


def not_sent(exc: BaseException) -> bool:
    """Whether *exc* shows the request never reached the server (it could not connect at all)."""
    if isinstance(exc, (BusyLoadingError, AuthenticationError)):
        return True
    text = str(exc)
    if "connecting to" in text or "Timeout connecting" in text:
        return True
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def closed(address: str) -> ReliableError:
    from .._errors import StoreUnavailableError

    return StoreUnavailableError(f"RedisStore for {address} is closed; make a new one", address=address)


async def aclose_client(client: Any) -> None:
    await client.aclose()
