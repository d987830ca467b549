"""`reliable.retry`: retry a function on transient failures, with the right defaults for HTTP and LLM APIs.

The wrapper calls the function first and does nothing else on success (one clock
read), so a call that works costs a fraction of a microsecond. Only a failure hands
over to `_retry_run` (classification, the pure core in `_backoff`, budget, telemetry,
the sleep on the library clock). The block form, `reliable.attempts`, lives in
`_attempts` and runs on tenacity's engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from inspect import isasyncgenfunction, iscoroutinefunction, isgeneratorfunction
from typing import Any, TypeVar

from typing_extensions import ParamSpec

from ._backoff import Jitter
from ._budget import RetryBudget
from ._classify import transient
from ._errors import ConfigError
from ._internal import _clock
from ._internal._durations import Duration
from ._retry_options import On, Options, make_options
from ._retry_run import Run, drive_async, drive_sync
from ._retry_streams import wrap_async_generator, wrap_generator

__all__ = ["retry"]

P = ParamSpec("P")
T = TypeVar("T")


def retry(
    *,
    attempts: int | None = 5,
    deadline: Duration | timedelta | None = 60.0,
    wait_initial: Duration | timedelta = 0.5,
    wait_max: Duration | timedelta = 30.0,
    wait_exp_base: float = 2.0,
    jitter: Jitter | bool = "full",
    on: On = transient,
    retry_on_result: Callable[[Any], bool] | None = None,
    budget: RetryBudget | None = None,
    max_server_wait: Duration | timedelta | None = None,
    name: str | None = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry the decorated function (sync, async, generator or async generator) when it fails transiently.

    After failed attempt *n* it waits the server's ``Retry-After`` if the error carries one,
    else a backoff drawn uniformly from ``[0, min(wait_max, wait_initial * wait_exp_base ** (n - 1))]``
    (full jitter), all on the library clock, within *attempts* and *deadline*. When it gives
    up it re-raises the function's own last exception with a note (PEP 678) saying why.

    Example::

        @reliable.retry(attempts=5, deadline="2m")
        def fetch(url: str) -> dict: ...

    Args:
        attempts: Most attempts in total, the first included (1 = no retries); None for no
            limit. Retries that an SDK made itself (``x-stainless-retry-count``) count too.
        deadline: Most time from the start of the first attempt to the start of the last
            (seconds, `timedelta` or ``"2m"``); None for none. A wait that would end at or
            after it gives up at once instead of sleeping in vain.
        wait_initial: Backoff ceiling after the first failure.
        wait_max: Cap of the computed backoff. It never shortens a server-requested wait.
        wait_exp_base: Growth of the backoff ceiling per attempt.
        jitter: ``"full"`` (uniform in ``[0, ceiling]``), ``"equal"`` (``[ceiling/2, ceiling]``),
            ``"none"`` (the ceiling); True means ``"full"``, False ``"none"``.
        on: What to retry: exception type(s), or a predicate ``exc -> bool``. Default
            `reliable.transient` (connection errors, timeouts, HTTP 408/425/429/5xx/529,
            not quota exhaustion). ``Retry-After`` is honoured whatever *on* is.
        retry_on_result: Retry when this returns true for the result; when attempts run
            out, the last result is returned. Not for generator functions.
        budget: A `reliable.RetryBudget` shared across processes; when it is empty, a
            failure is raised at once instead of retried.
        max_server_wait: The longest ``Retry-After`` to honour; a longer one gives up at once.
        name: The operation name in telemetry; default ``module.qualname`` of the function.

    Returns:
        A decorator that keeps the function's signature and type.

    Raises:
        ConfigError: An argument is invalid (raised here, before anything is decorated).

    .. versionadded:: 0.1.0
    """
    options = make_options(
        attempts=attempts,
        deadline=deadline,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_exp_base=wait_exp_base,
        jitter=jitter,
        on=on,
        retry_on_result=retry_on_result,
        budget=budget,
        max_server_wait=max_server_wait,
        name=name,
    )

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if not callable(fn):
            msg = f"reliable.retry(...) decorates functions, not {fn!r}; use it as @reliable.retry(...) above a def"
            raise ConfigError(msg, value=fn)
        label = options.name or _guess_name(fn)
        streaming = isgeneratorfunction(fn) or isasyncgenfunction(fn)
        if streaming and options.retry_on_result is not None:
            msg = (
                f"retry_on_result cannot be used on the generator function {label!r}; "
                "check the items yourself and raise to retry"
            )
            raise ConfigError(msg, parameter="retry_on_result", name=label)
        if isasyncgenfunction(fn):
            return wrap_async_generator(options, label, fn)  # type: ignore[return-value]  # ParamSpec kept by wraps
        if isgeneratorfunction(fn):
            return wrap_generator(options, label, fn)  # type: ignore[return-value]  # ParamSpec kept by wraps
        if iscoroutinefunction(fn):
            return _wrap_async(options, label, fn)
        return _wrap_sync(options, label, fn)

    return decorate


def _guess_name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{qualname}" if module else qualname


def _wrap_sync(options: Options, name: str, fn: Callable[P, T]) -> Callable[P, T]:
    current = _clock.current
    if options.budget is None and options.retry_on_result is None:

        @wraps(fn)
        def retried(*args: P.args, **kwargs: P.kwargs) -> T:
            clock = current()
            start = clock.monotonic()
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                first = exc
            try:
                return drive_sync(Run(options, name, clock, start), fn, args, kwargs, first)
            finally:
                del first  # no exception -> traceback -> this frame -> exception cycle left for the GC

        return retried

    budget = options.budget
    accept = options.retry_on_result

    @wraps(fn)
    def retried_checked(*args: P.args, **kwargs: P.kwargs) -> T:
        if budget is not None:
            budget.record_call()
        clock = current()
        start = clock.monotonic()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            first = exc
        else:
            if accept is None or not accept(result):
                return result
            return drive_sync(Run(options, name, clock, start), fn, args, kwargs, None, result)
        try:
            return drive_sync(Run(options, name, clock, start), fn, args, kwargs, first)
        finally:
            del first

    return retried_checked


def _wrap_async(options: Options, name: str, fn: Callable[P, Any]) -> Callable[P, Any]:
    current = _clock.current
    if options.budget is None and options.retry_on_result is None:

        @wraps(fn)
        async def retried(*args: P.args, **kwargs: P.kwargs) -> Any:
            clock = current()
            start = clock.monotonic()
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                first = exc
            try:
                return await drive_async(Run(options, name, clock, start), fn, args, kwargs, first)
            finally:
                del first  # no exception -> traceback -> this frame -> exception cycle left for the GC

        return retried

    budget = options.budget
    accept = options.retry_on_result

    @wraps(fn)
    async def retried_checked(*args: P.args, **kwargs: P.kwargs) -> Any:
        if budget is not None:
            await budget.arecord_call()
        clock = current()
        start = clock.monotonic()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            first = exc
        else:
            if accept is None or not accept(result):
                return result
            return await drive_async(Run(options, name, clock, start), fn, args, kwargs, None, result)
        try:
            return await drive_async(Run(options, name, clock, start), fn, args, kwargs, first)
        finally:
            del first

    return retried_checked
