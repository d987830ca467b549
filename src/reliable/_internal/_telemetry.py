"""The telemetry core: one place that turns a primitive's event into a span event, a metric and a log record.

Every primitive reports through `emit`::

    emit("retry", "attempt", "retrying 'fetch' in 1.2s after HTTP 503",
         level=logging.WARNING, attributes={"reliable.operation": "fetch", "reliable.attempt": 2})

which, never raising into the caller:

1. adds a span event ``reliable.retry.attempt`` to the current span, if one is recording;
2. counts the event in-process, exported as the observable counter ``reliable.events``
   (attributes ``event`` and ``reliable.operation``) once a meter provider is configured,
   so the hot path never calls ``Counter.add`` (see `reliable._internal._metrics`);
3. writes a log record to the logger ``reliable.retry`` if it is enabled for *level*,
   with the event name and attributes under ``record.reliable`` for structured formatters
   (built directly, see `reliable._internal._records`: the stdlib's ``Logger.log`` spends half its time finding
   the caller by walking the stack, which for a record made here is always this module);
4. hands the `Event` to the listeners: global ones (`add_listener`, used by test
   fixtures) and the ones of the current context (`listening`, used by ``observed``
   to learn what happened inside its scope).

Only ``opentelemetry-api`` is touched here; with no SDK installed every step is cheap.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace

from . import _clock, _metrics
from ._records import Caller, caller_of, outside_caller, write_record

__all__ = [
    "Event",
    "Caller",
    "add_listener",
    "caller_of",
    "count",
    "emit",
    "enabled",
    "event_counts",
    "listening",
    "outside_caller",
    "pop_listener",
    "push_listener",
    "remove_listener",
    "report",
    "wanted",
]

Listener = Callable[["Event"], None]
_log = logging.getLogger("reliable.telemetry")


@dataclass(frozen=True)
class Event:
    """One thing a primitive did, as listeners receive it."""

    __slots__ = ("attributes", "event", "exception", "level", "message", "name", "primitive", "time")

    name: str
    """``reliable.<primitive>.<event>``."""
    primitive: str
    event: str
    message: str
    level: int
    attributes: Mapping[str, Any]
    exception: BaseException | None
    time: float


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    listeners: tuple[Listener, ...] = ()
    failures: int = 0


_state = _State()
_scoped: contextvars.ContextVar[tuple[Listener, ...]] = contextvars.ContextVar("reliable_listeners", default=())
_loggers: dict[str, logging.Logger] = {}


def emit(
    primitive: str,
    event: str,
    message: str,
    *,
    level: int = logging.INFO,
    attributes: Mapping[str, Any] | None = None,
    exception: BaseException | None = None,
    caller: Caller | None = None,
) -> None:
    """Report *event* of *primitive*. Never raises; a failure is counted and logged at DEBUG.

    *caller* is the log record's ``pathname``, ``lineno`` and ``funcName`` (see `caller_of`);
    by default, `emit` itself.
    """
    try:
        _emit(primitive, event, message, level, attributes or {}, exception, caller)
    except Exception:  # telemetry must never break the caller
        _state.failures += 1
        with contextlib.suppress(Exception):  # logging itself may be what is broken
            _log.debug("telemetry failed for reliable.%s.%s", primitive, event, exc_info=True)


_EMIT: Caller = (__file__, emit.__code__.co_firstlineno, "emit")
"""The caller information of a record when the primitive gives none."""


def _emit(
    primitive: str,
    event: str,
    message: str,
    level: int,
    attributes: Mapping[str, Any],
    exception: BaseException | None,
    caller: Caller | None,
) -> None:
    name = f"reliable.{primitive}.{event}"
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, {k: _otel_value(v) for k, v in attributes.items() if v is not None})
    _metrics.count_event(name, str(attributes.get("reliable.operation", "")))
    _log_and_notify(name, primitive, event, message, level, attributes, exception, caller)


def _log_and_notify(
    name: str,
    primitive: str,
    event: str,
    message: str,
    level: int,
    attributes: Mapping[str, Any],
    exception: BaseException | None,
    caller: Caller | None,
) -> None:
    logger = _loggers.get(primitive)
    if logger is None:
        logger = _loggers.setdefault(primitive, logging.getLogger(f"reliable.{primitive}"))
    if logger.isEnabledFor(level):
        write_record(logger, level, message, {"event": name, **attributes}, exception, caller or _EMIT)
    listeners = _state.listeners + _scoped.get()
    if listeners:
        record = Event(name, primitive, event, message, level, attributes, exception, _clock.current().time())
        for listener in listeners:
            try:
                listener(record)
            except Exception:
                _state.failures += 1
                _log.debug("telemetry listener %r failed", listener, exc_info=True)


def _otel_value(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return list(value)
    return str(value)


def _observe(options: metrics.CallbackOptions) -> Iterator[metrics.Observation]:
    """The ``reliable.events`` callback: every (event, operation) count."""
    return _metrics.observe_events(options)


def event_counts() -> dict[tuple[str, str], int]:
    """A snapshot of the in-process event counters, keyed by ``(event name, operation)``."""
    return _metrics.event_counts()


def report(
    primitive: str,
    event: str,
    message: str,
    *,
    level: int,
    attributes: Mapping[str, Any],
    exception: BaseException | None = None,
    caller: Caller | None = None,
) -> None:
    """Like `emit`, but only the log record and the listeners: no span event, no count.

    `reliable.observed` reports the end of each call this way (it records the span and
    the ``reliable.calls`` count itself); call it only when `wanted` says so.
    """
    try:
        name = f"reliable.{primitive}.{event}"
        _log_and_notify(name, primitive, event, message, level, attributes, exception, caller)
    except Exception:  # telemetry must never break the caller
        _state.failures += 1
        with contextlib.suppress(Exception):
            _log.debug("telemetry failed for reliable.%s.%s", primitive, event, exc_info=True)


def wanted(primitive: str, level: int) -> bool:
    """Whether a record of *primitive* at *level* would reach a log handler or a listener (cheap)."""
    if _state.listeners or _scoped.get():
        return True
    logger = _loggers.get(primitive)
    if logger is None:
        logger = _loggers.setdefault(primitive, logging.getLogger(f"reliable.{primitive}"))
    return logger.isEnabledFor(level)


def enabled(primitive: str, level: int) -> bool:
    """Whether `emit` at *level* would do more than count: reach a listener, a log handler or a recording span.

    When False, `count` has the whole effect of `emit`, so a hot path can skip building the
    message and the attributes.
    """
    if _state.listeners or _scoped.get():
        return True
    logger = _loggers.get(primitive)
    if logger is None:
        logger = _loggers.setdefault(primitive, logging.getLogger(f"reliable.{primitive}"))
    return logger.isEnabledFor(level) or trace.get_current_span().is_recording()


def count(primitive: str, event: str, operation: str) -> None:
    """What `emit` does when `enabled` is False: count the event for *operation*. Never raises."""
    try:
        _metrics.count_event(f"reliable.{primitive}.{event}", operation)
    except Exception:  # telemetry must never break the caller
        _state.failures += 1


def add_listener(listener: Listener) -> None:
    """Call *listener* with every event from now on, in every thread."""
    with _state.lock:
        _state.listeners = (*_state.listeners, listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling *listener*; unknown listeners are ignored.

    Compared by equality, not identity: ``remove_listener(events.append)`` must remove what
    ``add_listener(events.append)`` added, though each ``events.append`` is a new bound-method object.
    """
    with _state.lock:
        _state.listeners = tuple(x for x in _state.listeners if x != listener)


def push_listener(listener: Listener, *, replaces: type | None = None) -> contextvars.Token[tuple[Listener, ...]]:
    """The fast form of `listening`: start; pass the token to `pop_listener` in the same context.

    With *replaces*, scoped listeners of that type stop hearing events until the token is
    popped: the innermost ``observed`` call alone learns what happened inside it.
    """
    current = _scoped.get()
    if replaces is not None and current:
        current = tuple(x for x in current if not isinstance(x, replaces))
    return _scoped.set((*current, listener))


def pop_listener(token: contextvars.Token[tuple[Listener, ...]]) -> None:
    """Stop the listener `push_listener` started."""
    _scoped.reset(token)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call *listener* with the events emitted in this context (this thread or task) until the block ends."""
    token = _scoped.set((*_scoped.get(), listener))
    try:
        yield
    finally:
        _scoped.reset(token)


def failures() -> int:
    """How many times emitting or a listener failed in this process."""
    return _state.failures
