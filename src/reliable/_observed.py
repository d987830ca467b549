"""`reliable.observed`: a span, a duration, an outcome and a log record for every call; heartbeats on request.

One core, `_Run`, does the work of a call: `begin` (span, scoped listener, clock) and
`conclude` (outcome, span status, metrics, log record), both without I/O; the sync and
async drivers (decorator wrappers and the context-manager methods) add the heartbeat
store I/O around them, through the flows of `reliable._heartbeat`.

Outcomes: ``ok``; ``error`` (an exception escaped; errors an inner retry handled do
not count); ``degraded`` (the result failed ``expect=``, or the predicate itself
raised); ``skipped`` (a ``reliable.single_instance`` inside skipped the run).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload

from typing_extensions import ParamSpec

from . import _heartbeat
from ._errors import ConfigError
from ._internal import _metrics, _telemetry
from ._internal._durations import Duration, optional_seconds
from ._observed_run import ObservedRun

__all__ = ["Observed", "ObservedRun", "observed"]

P = ParamSpec("P")
T = TypeVar("T")


class Observed:
    """What `observed` returns: a decorator, and a context manager (``with`` / ``async with``).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        name: str,
        *,
        expect: Callable[[Any], object] | None,
        spec: _heartbeat.Spec,
        heartbeat: bool,
        policy: Any,
        attributes: dict[str, Any],
        store: Any,
    ) -> None:
        self.name = name
        self.expect = expect
        self.spec = spec
        self.heartbeat = heartbeat
        self.policy = policy
        self.attributes = attributes
        self.store = store
        self.ok_key = (name, "ok")
        """The key of this operation's ok calls in the in-process call counts."""
        _metrics.ensure_registered()
        self._runs: contextvars.ContextVar[tuple[ObservedRun, ...]] = contextvars.ContextVar(
            f"reliable_observed_{name}", default=()
        )

    def __repr__(self) -> str:
        return f"observed({self.name!r})"

    # -- decorator ---------------------------------------------------------------

    def __call__(self, function: Callable[P, T]) -> Callable[P, T]:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            msg = (
                f"observed({self.name!r}) cannot decorate the generator function {function.__qualname__}: "
                "it would time only the creation of the generator; use `with observed(...):` around the loop instead"
            )
            raise ConfigError(msg, parameter="function", value=function)
        attributes = self.attributes  # only the caller's: the SDK spends ~1-2 µs on each span attribute
        where = _telemetry.caller_of(function)  # the end-of-call log record's pathname, lineno and funcName

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                run = (
                    await ObservedRun.astart(self, attributes, where)
                    if self.heartbeat
                    else ObservedRun(self, attributes, None, where)
                )
                try:
                    result = await function(*args, **kwargs)
                except BaseException as exc:
                    await run.afinish(exc, None, False)
                    raise
                await run.afinish(None, result, True)
                return result

            return awrapper  # type: ignore[return-value]  # same signature, awaitable result

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            run = (
                ObservedRun.start(self, attributes, where)
                if self.heartbeat
                else ObservedRun(self, attributes, None, where)
            )
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                run.finish(exc, None, False)
                raise
            run.finish(None, result, True)
            return result

        return wrapper

    # -- context manager -----------------------------------------------------------

    def __enter__(self) -> ObservedRun:
        run = ObservedRun.start(self, self.attributes) if self.heartbeat else ObservedRun(self, self.attributes)
        self._runs.set((*self._runs.get(), run))
        return run

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        run = self._pop()
        run.finish(exc, run.result, run.has_result)

    async def __aenter__(self) -> ObservedRun:
        attributes = self.attributes
        run = await ObservedRun.astart(self, attributes) if self.heartbeat else ObservedRun(self, attributes)
        self._runs.set((*self._runs.get(), run))
        return run

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        run = self._pop()
        await run.afinish(exc, run.result, run.has_result)

    def _pop(self) -> ObservedRun:
        runs = self._runs.get()
        self._runs.set(runs[:-1])
        return runs[-1]


def qualified_name(function: Callable[..., Any]) -> str:
    module = getattr(function, "__module__", None) or ""
    qualname = getattr(function, "__qualname__", None) or repr(function)
    return qualname if module in ("", "builtins", "__main__") else f"{module}.{qualname}"


@overload
def observed(name: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def observed(
    name: str,
    /,
    *,
    expect: Callable[[Any], object] | None = None,
    max_age: Duration | None = None,
    max_runtime: Duration | None = None,
    heartbeat: bool | None = None,
    alert: bool | Sequence[Any] | Any = True,
    attributes: Mapping[str, str | bool | int | float] | None = None,
    store: Any = None,
    failing_after: int = 1,
    recover_after: int = 2,
) -> Observed: ...


def observed(
    name: str | Callable[P, T],
    /,
    *,
    expect: Callable[[Any], object] | None = None,
    max_age: Duration | None = None,
    max_runtime: Duration | None = None,
    heartbeat: bool | None = None,
    alert: bool | Sequence[Any] | Any = True,
    attributes: Mapping[str, str | bool | int | float] | None = None,
    store: Any = None,
    failing_after: int = 1,
    recover_after: int = 2,
) -> Observed | Callable[P, T]:
    """Observe an operation: every call leaves a span, a duration, an outcome and a log record.

    Use it as a decorator (sync or async functions) or a context manager (``with`` or
    ``async with``; the ``as`` target is an `ObservedRun`). Bare ``@observed`` names the
    operation after the function.

    Each call makes one OpenTelemetry span named *name* (with ``error.type``, an exception
    event and status ERROR when it raises), counts ``reliable.calls`` by operation and
    outcome, records ``reliable.duration`` in seconds (both only reach an exporter when an
    SDK is configured), and writes one log record on ``reliable.observed`` at the end:
    INFO for ``ok`` and ``skipped``, WARNING for ``degraded``, ERROR for ``error``.

    Args:
        name: The operation's name: span name, metric attribute, heartbeat key.
        expect: A predicate on the result; falsy (or raising) makes the call ``degraded``,
            the "ran, but produced nothing" case (``expect=lambda rows: rows > 0``).
        max_age: Promise a success at least this often; enables heartbeats. Without one
            since, `reliable.health` and ``reliable check`` report the operation ``stale``.
        max_runtime: A run that neither finishes nor renews its lock within this is
            ``stuck``; enables heartbeats.
        heartbeat: Record heartbeats (last start, success, failure, runs in progress) in the
            store even without *max_age*. Without heartbeats, ``observed`` does no store I/O.
        alert: True for the configured sinks (default: log), False for none, a list of
            sinks, or a `reliable.alerts.Policy` (sinks and throttle).
        attributes: Extra span attributes.
        store: The store for heartbeats and alert throttling; default: the configured one.
        failing_after: Consecutive failures after which the operation is ``failing``.
        recover_after: Consecutive successes after which a failing operation is healthy
            again (and a recovery notice is sent); more than 1 keeps alerts from flapping.

    Returns:
        An `Observed`: a decorator and context manager.

    Raises:
        ConfigError: a bad argument, when ``observed(...)`` is called.

    .. versionadded:: 0.1.0
    """
    if callable(name) and not isinstance(name, str):
        return observed(qualified_name(name))(name)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        msg = f"name={name!r} is invalid; pass the operation's name, a non-empty str of at most 200 characters"
        raise ConfigError(msg, parameter="name", value=name)
    if expect is not None and not callable(expect):
        msg = f"expect={expect!r} is not callable; pass a predicate such as `lambda rows: rows > 0`"
        raise ConfigError(msg, parameter="expect", value=expect)
    age = optional_seconds(max_age, "max_age", allow_zero=False)
    runtime = optional_seconds(max_runtime, "max_runtime", allow_zero=False)
    for label, value in (("failing_after", failing_after), ("recover_after", recover_after)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"{label}={value!r} is invalid; pass an int >= 1 (a number of consecutive runs)"
            raise ConfigError(msg, parameter=label, value=value)
    if heartbeat is False and (age is not None or runtime is not None):
        msg = "heartbeat=False conflicts with max_age/max_runtime, which need heartbeats; drop one of them"
        raise ConfigError(msg, parameter="heartbeat", value=heartbeat)
    if store is not None and not isinstance(store, str) and not hasattr(store, "get"):
        msg = f"store={store!r} is not a store; pass a Store object or a URL such as 'sqlite:///state.db'"
        raise ConfigError(msg, parameter="store", value=store)
    if attributes is not None and not isinstance(attributes, Mapping):
        msg = f"attributes={attributes!r} is not a mapping; pass e.g. {{'team': 'data'}}"
        raise ConfigError(msg, parameter="attributes", value=attributes)
    spec = _heartbeat.Spec(name, age, runtime, failing_after, recover_after)
    return Observed(
        name,
        expect=expect,
        spec=spec,
        heartbeat=bool(heartbeat) or age is not None or runtime is not None,
        policy=_policy(alert),
        attributes=dict(attributes or {}),  # the span's name is the operation: no attribute repeats it
        store=store,
    )


def _policy(alert: Any) -> Any:
    from .alerts import Policy

    if alert is True:
        return Policy()
    if alert is False or alert is None:
        return None
    if isinstance(alert, Policy):
        return alert
    if isinstance(alert, Sequence) and not isinstance(alert, (str, bytes)):
        return Policy(sinks=list(alert))
    msg = f"alert={alert!r} is invalid; pass True, False, a list of sinks or reliable.alerts.Policy(...)"
    raise ConfigError(msg, parameter="alert", value=alert)
