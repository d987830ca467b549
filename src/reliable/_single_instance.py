"""`single_instance()`: never two runs of a job at once, on one host (file locks) or many (store leases)."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import logging
import secrets
import threading
from collections.abc import Callable, Coroutine, Hashable
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

from typing_extensions import Never, ParamSpec

from . import _config as _configuration
from . import _file_lock, _lock_registry
from ._config import lock_settings, resolve_store
from ._errors import AlreadyRunningError, ConfigError
from ._internal import _clock, _telemetry
from ._internal._durations import Duration
from ._lease import SKIPPED, Lease, Skipped
from ._lease_core import (
    DEFAULT_TTL,
    Conflict,
    Settings,
    conflict_message,
    next_poll,
    skip_message,
    slot_key,
    validate,
)
from ._lock_dir import default_lock_dir, prepare, slot_path
from ._store_flow import acquire_flow, arun, run
from ._store_lease import StoreLease

__all__ = ["SingleInstance", "single_instance"]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class _FileTarget:
    __slots__ = ("lock_dir", "name", "name_json", "paths", "registry_key")

    def __init__(self, settings: Settings, lock_dir: str, name_json: bytes) -> None:
        self.name = settings.name
        self.lock_dir = lock_dir
        self.name_json = name_json
        self.paths = [slot_path(lock_dir, settings.name, slot) for slot in range(settings.limit)]
        self.registry_key: Hashable = ("file", lock_dir, settings.name)

    def attempt(self, owner: _lock_registry.Owner, want_expiry: bool) -> Lease | Conflict | None:
        return _file_lock.try_acquire(self.name, self.name_json, self.paths, self.lock_dir, owner, self.registry_key)

    async def aattempt(self, owner: _lock_registry.Owner, want_expiry: bool) -> Lease | Conflict | None:
        return self.attempt(owner, want_expiry)  # non-blocking system calls only


class _StoreTarget:
    __slots__ = ("registry_key", "settings", "store")

    def __init__(self, settings: Settings, store: Any) -> None:
        self.settings = settings
        self.store = store
        self.registry_key: Hashable = ("store", id(store), settings.name)

    def _flow(self, owner: _lock_registry.Owner, owner_id: str, want_expiry: bool) -> Any:
        s = self.settings
        return acquire_flow(
            name=s.name,
            limit=s.limit,
            ttl=s.ttl,
            owner=owner,
            owner_id=owner_id,
            host=_file_lock.host_name(),
            since=_clock.current().time(),
            registry_key=self.registry_key,
            want_expiry=want_expiry,
        )

    def _lease(self, won: Any, owner_id: str, started: float) -> Lease | Conflict | None:
        if won is None or isinstance(won, Conflict):
            return won
        slot, version, value, token = won
        s = self.settings
        return StoreLease(
            self.store,
            owner_id,
            value,
            version,
            s.ttl,
            started,
            s.name,
            token,
            slot,
            value["pid"],
            value["host"],
            value["since"],
            slot_key(s.name, slot),
            self.registry_key,
        )

    def attempt(self, owner: _lock_registry.Owner, want_expiry: bool) -> Lease | Conflict | None:
        owner_id = secrets.token_hex(8)
        started = _clock.current().monotonic()
        lease = self._lease(run(self._flow(owner, owner_id, want_expiry), self.store), owner_id, started)
        if isinstance(lease, StoreLease):
            lease.start_renewer()
        return lease

    async def aattempt(self, owner: _lock_registry.Owner, want_expiry: bool) -> Lease | Conflict | None:
        owner_id = secrets.token_hex(8)
        started = _clock.current().monotonic()
        lease = self._lease(await arun(self._flow(owner, owner_id, want_expiry), self.store), owner_id, started)
        if isinstance(lease, StoreLease):
            lease.start_arenewer()
        return lease


class SingleInstance(Generic[R]):
    """What `single_instance` returns: a context manager (``with`` / ``async with``) and a decorator.

    ``R`` is `Skipped` with ``on_conflict="skip"`` (the block may get `SKIPPED`, the function
    may return it) and ``Never`` otherwise.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_cached", "_leases", "_name_json", "settings")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cached: tuple[object, _FileTarget | _StoreTarget] | None = None
        self._name_json = json.dumps(settings.name, ensure_ascii=False).encode()
        self._leases: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
            f"reliable_single_instance:{settings.name}", default=()
        )

    def __repr__(self) -> str:
        s = self.settings
        return f"single_instance({s.name!r}, on_conflict={s.on_conflict!r}, limit={s.limit})"

    # -- backend choice ------------------------------------------------------------------

    def _target(self) -> _FileTarget | _StoreTarget:
        """The backend to use, resolved again only after `reliable.configure` changed something.

        The default lock directory is read from the environment at the first use.
        """
        config = _configuration._config
        cached = self._cached
        if cached is not None and cached[0] is config:
            return cached[1]
        s = self.settings
        lock_dir, locks, network_fs = lock_settings()
        target: _FileTarget | _StoreTarget
        if s.store is not None or locks == "store":
            target = _StoreTarget(s, resolve_store(s.store))
        else:
            directory = prepare(s.lock_dir or lock_dir or default_lock_dir(), network_fs=network_fs)
            target = _FileTarget(s, directory, self._name_json)
        self._cached = (config, target)
        return target

    def _reentered(self, owner: _lock_registry.Owner) -> AlreadyRunningError:
        who = "task" if owner[1] is not None else "thread"
        msg = (
            f"{self.settings.name!r} is already held by this same {who}; single_instance is not "
            "re-entrant: do not nest it, or give the inner use another name"
        )
        return AlreadyRunningError(msg, name=self.settings.name, reentrant=True)

    def _conflict(self, conflict: Conflict, elapsed: float, attempt: int, *, blocking: bool) -> float | Skipped:
        """After a failed try: skip (report it), raise, or return how long to wait before the next try."""
        s = self.settings
        if s.on_conflict == "skip":
            _telemetry.emit(
                "single_instance",
                "skipped",
                skip_message(s.name, conflict.holders, limit=s.limit),
                level=logging.INFO,
                attributes=_holder_attributes(s.name, conflict),
            )
            return SKIPPED
        waited = elapsed if attempt else None
        if s.on_conflict == "wait":
            if blocking and conflict.in_process and self._holder_on_this_thread(conflict):
                msg = (
                    f"{s.name!r} is held by another asyncio task on this thread; waiting here would block its "
                    "event loop for ever: use 'async with' (or an async function) to wait for it"
                )
                raise AlreadyRunningError(msg, name=s.name)
            remaining = None if s.timeout is None else s.timeout - elapsed
            delay = next_poll(attempt, remaining=remaining, expires_in=conflict.expires_in)
            if delay is not None:
                return delay
            self._report_wait(elapsed, acquired=False)
        raise AlreadyRunningError(
            conflict_message(s.name, conflict.holders, limit=s.limit, waited=waited),
            name=s.name,
            holders=[h.as_dict() for h in conflict.holders],
        )

    def _holder_on_this_thread(self, conflict: Conflict) -> bool:
        key = self._target().registry_key
        me = threading.get_ident()
        return any(thread == me and task is not None for thread, task in _lock_registry.holders(key).values())

    def _report_wait(self, elapsed: float, *, acquired: bool) -> None:
        s = self.settings
        outcome = "acquired" if acquired else "gave up on"
        _telemetry.emit(
            "single_instance",
            "waited",
            f"waited {elapsed:.3f}s and {outcome} lock {s.name!r}",
            level=logging.INFO,
            attributes={
                "reliable.operation": s.name,
                "reliable.lock.waited_s": elapsed,
                "reliable.lock.acquired": acquired,
            },
        )

    def _acquired(self, lease: Lease, elapsed: float, attempt: int) -> Lease:
        if attempt:
            self._report_wait(elapsed, acquired=True)
        _telemetry.emit(
            "single_instance",
            "acquired",
            f"acquired lock {lease.name!r} (token {lease.token})",
            level=logging.DEBUG,
            attributes={
                "reliable.operation": lease.name,
                "reliable.lock.token": lease.token,
                "reliable.lock.slot": lease.slot,
                "reliable.lock.backend": lease.backend,
            },
        )
        return lease

    # -- drivers -------------------------------------------------------------------------

    def acquire(self) -> Lease | R:
        """Take the lock, or skip / wait / raise as *on_conflict* says; release the lease when done.

        Returns:
            The `Lease`, or `SKIPPED` when ``on_conflict="skip"`` and the lock is held.

        Raises:
            AlreadyRunningError: the lock is held (``"raise"``), still held after *timeout*
                (``"wait"``), or this thread or task holds it already (re-entrant use).
        """
        target = self._target()
        owner = _lock_registry.current_owner()
        want_expiry = self.settings.on_conflict == "wait"
        result = target.attempt(owner, want_expiry)
        if isinstance(result, Lease):
            return self._acquired(result, 0.0, 0)
        return self._acquire_after_conflict(target, owner, want_expiry, result)

    def _acquire_after_conflict(
        self, target: _FileTarget | _StoreTarget, owner: _lock_registry.Owner, want_expiry: bool, result: Any
    ) -> Lease | R:
        clock = _clock.current()
        elapsed, attempt = 0.0, 0
        while True:
            if isinstance(result, Lease):
                return self._acquired(result, elapsed, attempt)
            if result is None:
                raise self._reentered(owner)
            step = self._conflict(result, elapsed, attempt, blocking=True)
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
                return self._acquired(result, elapsed, attempt)
            if result is None:
                raise self._reentered(owner)
            step = self._conflict(result, elapsed, attempt, blocking=False)
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
        for item in reversed(self._leases.get()):
            if isinstance(item, Lease):
                return item
        return None

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Lease | R:
        lease = self.acquire()
        self._leases.set((*self._leases.get(), lease))
        return lease

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        leases = self._leases.get()
        self._leases.set(leases[:-1])
        lease = leases[-1]
        if isinstance(lease, Lease):
            lease.release()

    async def __aenter__(self) -> Lease | R:
        lease = await self.aacquire()
        self._leases.set((*self._leases.get(), lease))
        return lease

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        leases = self._leases.get()
        self._leases.set(leases[:-1])
        lease = leases[-1]
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
                token = self._leases.set((*self._leases.get(), lease))
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
            token = self._leases.set((*self._leases.get(), lease))
            try:
                return fn(*args, **kwargs)
            finally:
                self._leases.reset(token)
                lease.release()

        return run_once


def _holder_attributes(name: str, conflict: Conflict) -> dict[str, Any]:
    attributes: dict[str, Any] = {"reliable.operation": name, "reliable.lock.holders": len(conflict.holders)}
    if conflict.holders:
        first = conflict.holders[0]
        attributes.update(
            {
                "reliable.lock.holder.pid": first.pid,
                "reliable.lock.holder.host": first.host,
                "reliable.lock.holder.since": first.since,
                "reliable.lock.token": first.token,
            }
        )
    return attributes


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
