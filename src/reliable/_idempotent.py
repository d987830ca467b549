"""`idempotent()`: a function's effect happens once per key, whoever calls it and however often."""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, TypeVar, Union, cast, overload

from typing_extensions import ParamSpec

from . import _idempotency_finish as finish
from . import _idempotency_flow as flow
from . import _idempotency_lease as leases
from . import _idempotency_local as local
from ._config import StoreLike, check_store_option, resolve_store
from ._errors import ConfigError
from ._idempotency_core import Call, Policy
from ._idempotency_core import claim as claim_record
from ._internal import _clock
from ._internal._durations import Duration, optional_seconds, seconds
from ._keys import Keyer
from ._serialize import Serializer, resolve

__all__ = ["idempotent"]

P = ParamSpec("P")
T = TypeVar("T")

ErrorTypes = Union[type[BaseException], tuple[type[BaseException], ...]]
DEFAULT_MAX_RESULT_BYTES = 1_048_576

_host = socket.gethostname()
_tuple_new = tuple.__new__
_serial = itertools.count(1)
_prefix = f"{_host}:{os.getpid()}:"


def _forked() -> None:
    global _prefix
    _prefix = f"{_host}:{os.getpid()}:"


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_forked)


def owner() -> str:
    """A unique id for one call: ``host:pid:n``."""
    return _prefix + str(next(_serial))


def options(
    *,
    ttl: Duration | None,
    lease: Duration,
    store: StoreLike | None,
    on_in_progress: str,
    cache_errors: ErrorTypes,
    serializer: str | Serializer,
    max_result_bytes: int,
) -> dict[str, Any]:
    """Check the settings shared by `idempotent` and `reliable.idempotency`; raise `ConfigError` naming the bad one."""
    if on_in_progress not in ("wait", "raise"):
        msg = f"on_in_progress={on_in_progress!r} is invalid; pass 'wait' (wait for the result) or 'raise'"
        raise ConfigError(msg, parameter="on_in_progress", value=on_in_progress)
    errors = cache_errors if isinstance(cache_errors, tuple) else (cache_errors,)
    if not all(isinstance(e, type) and issubclass(e, Exception) for e in errors):
        msg = f"cache_errors={cache_errors!r} is invalid; pass an exception class or a tuple of them"
        raise ConfigError(msg, parameter="cache_errors", value=cache_errors)
    try:
        chosen = resolve(serializer)
    except TypeError:
        msg = f"serializer={serializer!r} is invalid; pass 'json', 'pickle', or an object with dumps() and loads()"
        raise ConfigError(msg, parameter="serializer", value=serializer) from None
    if isinstance(max_result_bytes, bool) or not isinstance(max_result_bytes, int) or max_result_bytes <= 0:
        msg = f"max_result_bytes={max_result_bytes!r} is invalid; pass a positive int"
        raise ConfigError(msg, parameter="max_result_bytes", value=max_result_bytes)
    check_store_option(store, _is_store)
    return {
        "ttl": optional_seconds(ttl, "ttl", allow_zero=False),
        "lease": seconds(lease, "lease", allow_zero=False),
        "wait": on_in_progress == "wait",
        "cache_errors": errors,
        "serializer": chosen,
        "max_result_bytes": max_result_bytes,
    }


def _is_store(store: object) -> bool:
    return callable(getattr(store, "put_if_absent", None)) or callable(getattr(store, "aput_if_absent", None))


def drive(store: Any, steps: flow.Flow) -> Any:
    """Carry out a flow's requests with the blocking store API."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        error = None
        code = op[0]
        try:
            if code == flow.PUT:
                reply = store.put_if_absent(op[1], op[2], ttl=op[3])
            elif code == flow.CAS:
                reply = store.compare_and_set(op[1], op[2], version=op[3], ttl=op[4])
            elif code == flow.HOLD:
                reply = leases.hold(store, *op[1:])
            elif code == flow.STOP:
                reply = op[1].stop()
            elif code == flow.GET:
                reply = store.get(op[1])
            elif code == flow.DELETE:
                reply = store.delete(op[1], version=op[2])
            elif code == flow.SLEEP:
                reply = None
                _clock.current().sleep(op[1])
            else:
                reply = None
                local.wait_flight(op[1])
        except BaseException as exc:
            error = exc


async def adrive(store: Any, steps: flow.Flow) -> Any:
    """Carry out a flow's requests with the asyncio store API."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        error = None
        code = op[0]
        try:
            if code == flow.PUT:
                reply = await store.aput_if_absent(op[1], op[2], ttl=op[3])
            elif code == flow.CAS:
                reply = await store.acompare_and_set(op[1], op[2], version=op[3], ttl=op[4])
            elif code == flow.HOLD:
                reply = leases.hold_async(store, *op[1:])
            elif code == flow.STOP:
                reply = await op[1].astop()
            elif code == flow.GET:
                reply = await store.aget(op[1])
            elif code == flow.DELETE:
                reply = await store.adelete(op[1], version=op[2])
            elif code == flow.SLEEP:
                reply = None
                await _clock.current().asleep(op[1])
            else:
                reply = None
                await local.await_flight(op[1])
        except BaseException as exc:
            error = exc


def begin(store: Any, policy: Policy, call: Call) -> flow.Claimed:
    """`flow.enter` with the blocking store API, without a generator on the common paths.

    A key this process saw completed is read first (a replay is one read and no claim); otherwise
    the leader claims it, and either replays what the claim found or holds the claim and runs.
    """
    if local.settled(store, call.key):
        replayed = flow.replay_settled(policy, store, call, store.get(call.key))
        if replayed is not None:
            return replayed
    flight = flow.lead(store, call)
    if flight is None:
        return cast(flow.Claimed, drive(store, flow.enter(policy, store, call)))
    claim = claim_record(policy, call)
    try:
        record, created = store.put_if_absent(call.key, claim, ttl=policy.lease)
        outcome = flow.settle(policy, store, call, flight, record, created)
        if isinstance(outcome, flow.Claimed):
            return outcome
        if created:
            flow.first_run(policy, call)
            lease = leases.hold(store, call.key, claim, record.version, policy.lease, policy.operation)
            return flow.Claimed(call, flight, lease, False, None)
    except BaseException:
        local.finish(store, call.key, flight)
        raise
    return cast(flow.Claimed, drive(store, flow.rest(policy, store, call, flight, claim, record, outcome)))


async def abegin(store: Any, policy: Policy, call: Call) -> flow.Claimed:
    """`begin` with the asyncio store API."""
    if local.settled(store, call.key):
        replayed = flow.replay_settled(policy, store, call, await store.aget(call.key))
        if replayed is not None:
            return replayed
    flight = flow.lead(store, call)
    if flight is None:
        return cast(flow.Claimed, await adrive(store, flow.enter(policy, store, call)))
    claim = claim_record(policy, call)
    try:
        record, created = await store.aput_if_absent(call.key, claim, ttl=policy.lease)
        outcome = flow.settle(policy, store, call, flight, record, created)
        if isinstance(outcome, flow.Claimed):
            return outcome
        if created:
            flow.first_run(policy, call)
            lease = leases.hold_async(store, call.key, claim, record.version, policy.lease, policy.operation)
            return flow.Claimed(call, flight, lease, False, None)
    except BaseException:
        local.finish(store, call.key, flight)
        raise
    return cast(flow.Claimed, await adrive(store, flow.rest(policy, store, call, flight, claim, record, outcome)))


def async_store(store: StoreLike | None) -> Any:
    """The resolved store, checked to have the asyncio methods."""
    resolved = resolve_store(store)
    if not callable(getattr(resolved, "aput_if_absent", None)):
        msg = f"store {resolved!r} has no asyncio methods (aput_if_absent, ...); pass an AsyncStore"
        raise ConfigError(msg, parameter="store", value=resolved)
    return resolved


@overload
def idempotent(fn: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def idempotent(
    *,
    key: Callable[..., Any] | None = None,
    name: str | None = None,
    ttl: Duration | None = "24h",
    lease: Duration = "60s",
    store: StoreLike | None = None,
    on_in_progress: Literal["wait", "raise"] = "wait",
    cache_errors: ErrorTypes = (),
    serializer: Literal["json", "pickle"] | Serializer = "json",
    fingerprint: bool | Callable[..., Any] | None = True,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


def idempotent(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    key: Callable[..., Any] | None = None,
    name: str | None = None,
    ttl: Duration | None = "24h",
    lease: Duration = "60s",
    store: StoreLike | None = None,
    on_in_progress: Literal["wait", "raise"] = "wait",
    cache_errors: ErrorTypes = (),
    serializer: Literal["json", "pickle"] | Serializer = "json",
    fingerprint: bool | Callable[..., Any] | None = True,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> Any:
    """Make a function's effect happen once per key, across threads, tasks, processes and hosts.

    The first call with a key claims it in the store, runs the function and stores its result;
    every later call with that key, until *ttl* ends, returns the stored result without running
    the function. A call that arrives while the first one runs waits for its result.

    Args:
        key: A callable taking the function's arguments and returning the key (a str, or a
            number or other canonical value). None: a hash of the function's bound arguments,
            with defaults applied, so ``f(1, b=2)`` and ``f(a=1, b=2)`` share a key. A key
            callable that returns None or ``""`` raises `ConfigError`.
        name: The namespace of the keys. Defaults to the function's ``module.qualname``, so
            moving or renaming the function changes its keys: pin it with ``name=`` first.
        ttl: How long a completed record is kept (a replay is possible); None keeps it forever.
        lease: How long a claim lasts if its holder stops renewing it (it died). Renewed every
            third of the lease while the function runs.
        store: The store, a store URL, or None for the configured default.
        on_in_progress: ``"wait"`` for the running call's result, or ``"raise"``
            `InProgressError` at once.
        cache_errors: Exception types that are recorded as the outcome and re-raised on
            replay. Other exceptions release the key, so a later call runs again.
        serializer: ``"json"`` (type-preserving JSON, the default), ``"pickle"``, or an object
            with ``dumps(value)`` and ``loads(data)``.
        fingerprint: True: a later call with the same key but different arguments raises
            `IdempotencyConflictError`. False/None: no check. A callable over the arguments:
            compare what it returns instead.
        max_result_bytes: Results whose record would be larger are not stored (the call is
            still marked done, and a warning is logged).

    Returns:
        A decorator (or, used bare as ``@idempotent``, the decorated function). The decorated
        function keeps its signature and works for sync and async functions.

    Raises:
        ConfigError: a setting is invalid (at decoration), or a call's key cannot be made.
        IdempotencyConflictError: the key was used with different arguments.
        InProgressError: the key is busy and ``on_in_progress="raise"``.
        LeaseLostError: the claim expired and another caller took it over before this call
            stored its result (the result is on the error's ``result`` attribute).

    .. versionadded:: 0.1.0
    """
    if key is not None and not callable(key):
        msg = f"key={key!r} is not callable; pass a function of the arguments, e.g. key=lambda order: order['id']"
        raise ConfigError(msg, parameter="key", value=key)
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"name={name!r} is invalid; pass a non-empty str", parameter="name", value=name)
    if fingerprint is not None and not isinstance(fingerprint, bool) and not callable(fingerprint):
        msg = f"fingerprint={fingerprint!r} is invalid; pass True, False, or a function of the arguments"
        raise ConfigError(msg, parameter="fingerprint", value=fingerprint)
    settings = options(
        ttl=ttl,
        lease=lease,
        store=store,
        on_in_progress=on_in_progress,
        cache_errors=cache_errors,
        serializer=serializer,
        max_result_bytes=max_result_bytes,
    )

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if not callable(fn):
            raise ConfigError(f"@idempotent decorates functions, not {fn!r}", parameter="fn", value=fn)
        operation = name or f"{fn.__module__}.{fn.__qualname__}"
        policy = Policy(operation=operation, **settings)
        keyer = Keyer(operation, fn, key, fingerprint if fingerprint is not None else False)
        if inspect.iscoroutinefunction(fn):
            return cast(Callable[P, T], _async_wrapper(fn, policy, keyer, store))
        return _sync_wrapper(fn, policy, keyer, store)

    return decorate if fn is None else decorate(fn)


def _sync_wrapper(fn: Callable[P, T], policy: Policy, keyer: Keyer, store: StoreLike | None) -> Callable[P, T]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        key, fingerprint = keyer(args, kwargs)
        call = _tuple_new(Call, (key, fingerprint, owner()))  # Call(...) without its Python-level __new__
        resolved = resolve_store(store)
        claimed = begin(resolved, policy, call)
        if claimed.replayed:
            return cast(T, claimed.result)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            drive(resolved, finish.fail(policy, resolved, claimed, exc))
            raise
        return cast(T, drive(resolved, finish.succeed(policy, resolved, claimed, result)))

    return wrapper


def _async_wrapper(
    fn: Callable[P, Awaitable[T]], policy: Policy, keyer: Keyer, store: StoreLike | None
) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        key, fingerprint = keyer(args, kwargs)
        call = _tuple_new(Call, (key, fingerprint, owner()))  # Call(...) without its Python-level __new__
        resolved = async_store(store)
        claimed = await abegin(resolved, policy, call)
        if claimed.replayed:
            return cast(T, claimed.result)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            await adrive(resolved, finish.fail(policy, resolved, claimed, exc))
            raise
        return cast(T, await adrive(resolved, finish.succeed(policy, resolved, claimed, result)))

    return wrapper
