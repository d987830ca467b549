"""`single_instance()`: never two runs of a job at once, on one host (file locks) or many (store leases)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

from typing_extensions import Never, ParamSpec

from . import _config as _configuration
from . import _lock_registry
from ._errors import ConfigError
from ._internal import _clock, _telemetry
from ._internal._durations import Duration
from ._lease import Lease, Skipped
from ._lease_core import DEFAULT_TTL, Settings, validate
from ._lock_conflicts import after_conflict, reentered, report_acquired
from ._lock_targets import Target, resolve

__all__ = ["SingleInstance", "single_instance"]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

_Held = tuple[object, "_Held | None"]
"""What a `SingleInstance` holds in one context: the innermost lease (or `SKIPPED`) and what it held before."""
_get_running_loop = asyncio.events._get_running_loop
_get_ident = threading.get_ident


class SingleInstance(Generic[R]):
    """What `single_instance` returns: a context manager (``with`` / ``async with``) and a decorator.

    ``R`` is `Skipped` with ``on_conflict="skip"`` (the block may get `SKIPPED`, the function
    may return it) and ``Never`` otherwise.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_cached", "_leases", "_name_json", "settings")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cached: tuple[object, Target] | None = None
        self._name_json = json.dumps(settings.name, ensure_ascii=False).encode()
        self._leases: contextvars.ContextVar[_Held | None] = contextvars.ContextVar(
            f"reliable_single_instance:{settings.name}", default=None
        )

    def __repr__(self) -> str:
        s = self.settings
        return f"single_instance({s.name!r}, on_conflict={s.on_conflict!r}, limit={s.limit})"

    # -- backend choice ------------------------------------------------------------------

    def _target(self) -> Target:
        """The backend to use, resolved again only after `reliable.configure` changed something.

        The default lock directory is read from the environment at the first use.
        """
        config = _configuration._config
        cached = self._cached
        if cached is not None and cached[0] is config:
            return cached[1]
        target = resolve(self.settings, self._name_json)
        self._cached = (config, target)
        return target

    # -- drivers -------------------------------------------------------------------------

    def acquire(self) -> Lease | R:
        """Take the lock, or skip / wait / raise as *on_conflict* says; release the lease when done.

        Returns:
            The `Lease`, or `SKIPPED` when ``on_conflict="skip"`` and the lock is held.

        Raises:
            AlreadyRunningError: the lock is held (``"raise"``), still held after *timeout*
                (``"wait"``), or this thread or task holds it already (re-entrant use).
        """
        cached = self._cached
        target = cached[1] if cached is not None and cached[0] is _configuration._config else self._target()
        loop = _get_running_loop()
        owner = (_get_ident(), None if loop is None else asyncio.current_task(loop))  # current_owner(), inlined
        want_expiry = self.settings.on_conflict == "wait"
        result = target.attempt(owner, want_expiry)
        if isinstance(result, Lease):
            if _telemetry.enabled("single_instance", logging.DEBUG):
                return report_acquired(self.settings, result, 0.0, 0)
            _telemetry.count("single_instance", "acquired", result.name)
            return result
        return self._acquire_after_conflict(target, owner, want_expiry, result)

    def _acquire_after_conflict(
        self, target: Target, owner: _lock_registry.Owner, want_expiry: bool, result: Any
    ) -> Lease | R:
        clock = _clock.current()
        elapsed, attempt = 0.0, 0
        while True:
            if isinstance(result, Lease):
                return report_acquired(self.settings, result, elapsed, attempt)
            if result is None:
                raise reentered(self.settings, owner)
            step = after_conflict(
                self.settings, result, elapsed, attempt, blocking=True, registry_key=target.registry_key
            )
            if isinstance(step, Skipped):
                return step  # type: ignore[return-value]  # R is Skipped whenever skipping is possible
            before = clock.monotonic()
            if result.in_process:
                woke = _lock_registry.wait(target.registry_key, step, self.settings.limit)
                elapsed += max(clock.monotonic() - before, 0.0 if woke else step)
            else:
                clock.sleep(step)
                elapsed += clock.monotonic() - before
            attempt += 1
            result = target.attempt(owner, want_expiry)

    async def aacquire(self) -> Lease | R:
        """The async twin of `acquire`: waits without blocking the event loop."""
        target = self._target()
        owner = _lock_registry.current_owner()
        want_expiry = self.settings.on_conflict == "wait"
        clock = _clock.current()
        elapsed, attempt = 0.0, 0
        while True:
            result = await target.aattempt(owner, want_expiry)
            if isinstance(result, Lease):
                return report_acquired(self.settings, result, elapsed, attempt)
            if result is None:
                raise reentered(self.settings, owner)
            step = after_conflict(
                self.settings, result, elapsed, attempt, blocking=False, registry_key=target.registry_key
            )
            if isinstance(step, Skipped):
                return step  # type: ignore[return-value]  # R is Skipped whenever skipping is possible
            before = clock.monotonic()
            if result.in_process:
                woke = await _lock_registry.await_release(target.registry_key, step, self.settings.limit)
                elapsed += max(clock.monotonic() - before, 0.0 if woke else step)
            else:
                await clock.asleep(step)
                elapsed += clock.monotonic() - before
            attempt += 1

    @property
    def lease(self) -> Lease | None:
        """The lease this thread or task holds through this object, inside its ``with`` block or decorated call.

        A decorated function reads its fencing token this way::

            lock = single_instance("sync-orders")

            @lock
            def sync_orders() -> None:
                write(rows, fencing_token=lock.lease.token)
        """
        held = self._leases.get()
        while held is not None:
            item, held = held
            if isinstance(item, Lease):
                return item
        return None

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Lease | R:
        lease = self.acquire()
        var = self._leases
        var.set((lease, var.get()))
        return lease

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        var = self._leases
        lease, outer = var.get()  # type: ignore[misc]  # __enter__ set it in this context
        var.set(outer)
        if isinstance(lease, Lease):
            lease.release()

    async def __aenter__(self) -> Lease | R:
        lease = await self.aacquire()
        self._leases.set((lease, self._leases.get()))
        return lease

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        lease, outer = self._leases.get()  # type: ignore[misc]  # __aenter__ set it in this context
        self._leases.set(outer)
        if isinstance(lease, Lease):
            await lease.arelease()

    # -- decorator -------------------------------------------------------------------------

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T | R]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T | R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        if not callable(fn):
            msg = f"single_instance({self.settings.name!r}) decorates functions, not {fn!r}; use @single_instance(...)"
            raise ConfigError(msg, parameter="fn", value=fn)
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            msg = (
                f"single_instance({self.settings.name!r}) cannot decorate the generator function {fn.__qualname__}: "
                "the lock would be released before the generator runs; use 'with single_instance(...)' inside it"
            )
            raise ConfigError(msg, parameter="fn", value=fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def arun_once(*args: P.args, **kwargs: P.kwargs) -> Any:
                lease = await self.aacquire()
                if not isinstance(lease, Lease):
                    return lease
                token = self._leases.set((lease, self._leases.get()))
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self._leases.reset(token)
                    await lease.arelease()

            return arun_once

        @functools.wraps(fn)
        def run_once(*args: P.args, **kwargs: P.kwargs) -> Any:
            lease = self.acquire()
            if not isinstance(lease, Lease):
                return lease
            token = self._leases.set((lease, self._leases.get()))
            try:
                return fn(*args, **kwargs)
            finally:
                self._leases.reset(token)
                lease.release()

        return run_once


@overload
def single_instance(
    name: str,
    *,
    store: Any = None,
    on_conflict: Literal["skip"] = "skip",
    timeout: None = None,
    ttl: Duration = DEFAULT_TTL,
    limit: int = 1,
    lock_dir: Any = None,
) -> SingleInstance[Skipped]: ...


@overload
def single_instance(
    name: str,
    *,
    store: Any = None,
    on_conflict: Literal["wait", "raise"],
    timeout: Duration | None = None,
    ttl: Duration = DEFAULT_TTL,
    limit: int = 1,
    lock_dir: Any = None,
) -> SingleInstance[Never]: ...


@overload
def single_instance(
    name: str,
    *,
    store: Any = None,
    on_conflict: str,
    timeout: Duration | None = None,
    ttl: Duration = DEFAULT_TTL,
    limit: int = 1,
    lock_dir: Any = None,
) -> SingleInstance[Skipped]: ...


def single_instance(
    name: str,
    *,
    store: Any = None,
    on_conflict: str = "skip",
    timeout: Duration | None = None,
    ttl: Duration = DEFAULT_TTL,
    limit: int = 1,
    lock_dir: Any = None,
) -> SingleInstance[Any]:
    """Never run *name* twice at once: a context manager and decorator, sync and async.

    On one host (no store): an ``flock`` on ``<lock_dir>/<name>.lock``; the operating system
    frees it the moment the holder dies. Across hosts (a store passed or configured with
    ``reliable.configure(locks="store")``): a lease with a TTL in the store, renewed in the
    background; a killed holder's lease frees after at most *ttl*.

    >>> with single_instance("nightly-report") as lease:
    ...     lease.token > 0
    True

    Args:
        name: The lock's name; every process that must not overlap uses the same one.
        store: A store or store URL to hold leases in (locks across hosts). None: the file
            backend, unless ``configure(locks="store")`` chose the configured store.
        on_conflict: What to do when the lock is held: ``"skip"`` (the default: do not
            run; the function returns `SKIPPED`, ``with`` binds `SKIPPED`, an INFO log
            says who holds it), ``"wait"`` (until it is free, or *timeout*), or ``"raise"``
            (`AlreadyRunningError` at once, naming the holder).
        timeout: With ``"wait"``: give up after this long (seconds, timedelta or ``"5m"``)
            and raise `AlreadyRunningError`; None waits for ever.
        ttl: Store leases only: how long a lease lasts without renewal (renewed every
            ttl/3). Longer survives longer pauses; shorter frees a dead holder's lease sooner.
        limit: How many holders may run at once (a semaphore of *limit* slots).
        lock_dir: File locks only: the directory of the lock files (default
            ``$RELIABLE_LOCK_DIR``, ``configure(lock_dir=...)``, or
            ``$XDG_STATE_HOME/reliable/locks``). Every process must use the same one.

    Returns:
        A `SingleInstance`: ``with``/``async with`` it to get a `Lease` (or `SKIPPED`), or
        decorate a function or coroutine function with it.

    Raises:
        ConfigError: an argument is invalid (raised here, before any lock is touched).

    .. versionadded:: 0.1.0
    """
    settings = validate(
        name, on_conflict=on_conflict, timeout=timeout, ttl=ttl, limit=limit, store=store, lock_dir=lock_dir
    )
    return SingleInstance(settings)
