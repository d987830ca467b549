"""What the server-backed stores (Redis, PostgreSQL) share: keys, URLs, faults, per-loop clients.

Nothing here imports a driver. `RedisStore` and `PostgresStore` build on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import ConfigError, StoreUnavailableError
from .._internal import _clock

R = TypeVar("R")

WRITES = frozenset({"put_if_absent", "compare_and_set", "set", "delete", "incr"})
"""Operations that change the store: a connection lost while one runs leaves its outcome unknown."""

_INHERITED: list[object] = []
"""Clients and pools created before a fork, kept alive in the child so that their finalizers never
close sockets the parent still uses (a PostgreSQL connection sends Terminate when finalized)."""


def encode_key(key: str) -> bytes:
    """UTF-8 bytes of *key*; byte order equals code-point order, so server-side sorts match `sorted()`."""
    return key.encode("utf-8", "surrogatepass")


def decode_key(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with *prefix* (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def test_time(clock: _clock.Clock | None) -> float | None:
    """The store's time under a clock other than the system clock (a test's `FakeClock`), else None.

    With the system clock a server store reads its server's time. Under another clock it
    uses that clock's time: the server's time plus the clock's skew
    (`reliable._internal._clock.skew`), without the network's jitter, so that "sleep until
    the expiry, then look" lands exactly on the expiry in tests, as with `MemoryStore`.
    """
    chosen = clock or _clock.current()
    if isinstance(chosen, _clock.SystemClock):
        return None
    return chosen.time()


def pop_query(url: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Remove the query parameters *names* from *url*; return the rest of the URL and what was removed."""
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in names:
            taken[name] = value
        else:
            kept.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), taken


def redact(url: str) -> str:
    """*url* without its password and query, for messages: ``redis://user@host:6379/0``."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_timeout(timeout: float, name: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        msg = f"{name}={timeout!r} is invalid; pass seconds > 0 (how long to wait for the server before giving up)"
        raise ConfigError(msg, parameter=name, value=timeout)
    return float(timeout)


def unavailable(
    server: str, address: str, operation: str, key: str | None, exc: BaseException, *, sent: bool
) -> StoreUnavailableError:
    """The `StoreUnavailableError` for *exc*, saying whether a write might have been applied.

    *sent* is False when the failure happened before the request reached the server
    (no connection could be made), so even a write was certainly not applied.
    """
    maybe_applied = sent and operation in WRITES
    target = operation if key is None else f"{operation}({key!r})"
    if maybe_applied:
        outcome = "the write may or may not have been applied: read the key before doing it again"
    elif operation in WRITES:
        outcome = "the write was not applied"
    else:
        outcome = "nothing was changed"
    msg = (
        f"{server} at {address} is unavailable during {target}: {exc}; {outcome}. "
        "Check that the server is up and reachable; the store reconnects on its next call."
    )
    return StoreUnavailableError(msg, address=address, operation=operation, key=key, maybe_applied=maybe_applied)


class PerLoop(Generic[R]):
    """One async client or pool per running event loop (and per process), made on first use.

    Async connections belong to the loop that opened them, so a store made in one loop
    (or before a fork) opens fresh ones in another. A client is closed when its loop
    shuts down (``asyncio.run`` finalizes async generators, and a suspended one closes
    the client in its ``finally``), when `aclose` runs in its loop, or by `close`.
    """

    def __init__(self, make: Callable[[], Awaitable[R]], close: Callable[[R], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[R, AsyncGenerator[None, None]]] = (
            weakref.WeakKeyDictionary()
        )
        self._making: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    async def get(self) -> R:
        loop = asyncio.get_running_loop()
        self._forget_stale()
        item = self._items.get(loop)
        if item is not None:
            return item[0]
        with self._lock:
            making = self._making.setdefault(loop, asyncio.Lock())
        async with making:  # one task of this loop makes it; the others wait and share it
            item = self._items.get(loop)
            if item is not None:
                return item[0]
            made = await self._make()
            guard = self._guard(made)
            await guard.asend(None)
            with self._lock:
                self._items[loop] = (made, guard)
            return made

    async def _guard(self, made: R) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self._close(made)

    def _forget_stale(self) -> None:
        with self._lock:
            if os.getpid() != self._pid:
                _INHERITED.append(dict(self._items))
                self._items = weakref.WeakKeyDictionary()
                self._pid = os.getpid()
                return
            for loop in [lp for lp in self._items if lp.is_closed()]:
                del self._items[loop]

    async def aclose_current(self) -> None:
        """Close this loop's client, if any."""
        with self._lock:
            item = self._items.pop(asyncio.get_running_loop(), None)
        if item is not None:
            await item[1].aclose()

    def close_all(self) -> None:
        """Close the clients of loops that are not running (best effort) and forget every one."""
        with self._lock:
            items, self._items = list(self._items.items()), weakref.WeakKeyDictionary()
        for loop, (_, guard) in items:
            if not loop.is_closed() and not loop.is_running():
                with contextlib.suppress(Exception):  # best effort; the sockets die with the loop
                    loop.run_until_complete(guard.aclose())


def forked_since(pid: int, resource: object | None) -> bool:
    """Whether this process forked since *resource* was made in process *pid*; if so keep it alive."""
    if resource is None or os.getpid() == pid:
        return False
    _INHERITED.append(resource)
    return True
