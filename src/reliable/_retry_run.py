"""One retried call after its first failure: the state, the reports, and the sync and async drivers.

The decorator calls the function itself first and comes here only when that fails,
so a call that succeeds never touches any of this. `Run.assess` turns a failure into
the pure core's `Decision` and keeps the classification on the `Run`; the drivers do
the I/O around it: the budget, the sleep on the library clock, the next attempt. A
failed attempt allocates its `Decision` (a tuple) and, only when someone would see
it, the report's message and attributes.
"""

from __future__ import annotations

import logging
import random
import sys
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from opentelemetry import trace

from ._backoff import Decision, decide
from ._classify import Classification, classify_at, known_classification, sdk_retries
from ._internal import _telemetry
from ._internal._clock import Clock
from ._retry_options import Options

__all__ = ["Run", "add_note", "drive_async", "drive_sync"]

T = TypeVar("T")

_RESULT = Classification("transient", True, None, None, "the result matched retry_on_result")
_warned: set[str] = set()
_random = random.random
_WARNING = logging.WARNING


def add_note(exc: BaseException, note: str) -> None:
    """Attach *note* to *exc* (PEP 678: `add_note` on 3.11+, the ``__notes__`` list on 3.10)."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:  # pragma: no cover - exercised on Python 3.10 only
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list):
            notes.append(note)
        else:
            exc.__notes__ = [note]  # type: ignore[attr-defined]  # PEP 678 on 3.10


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "the result was rejected by retry_on_result"
    text = str(exc)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__qualname__}: {text}" if text else type(exc).__qualname__


def _error_type(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _mark_span(attempts: int, span: Any = None) -> None:
    try:
        if span is None:
            span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("reliable.retry.attempts", attempts)
    except Exception:  # telemetry never breaks the call
        pass


class Run:
    """The retry state of one call: which attempt, since when, what the last failure was."""

    __slots__ = ("attempt", "classification", "clock", "name", "options", "retryable", "sdk_retries", "span", "start")

    def __init__(self, options: Options, name: str, clock: Clock, start: float) -> None:
        self.options = options
        self.name = name
        self.clock = clock
        self.start = start
        self.attempt = 1
        """The number of the attempt that failed last (our attempts only)."""
        self.sdk_retries = 0
        self.span: Any = None
        """The caller's current span, looked up once per call when first needed."""
        self.classification = _RESULT
        """What the classifier said about the last failure (set by `assess`)."""
        self.retryable = True
        """Whether the last failure may be retried: the classifier's answer, or the caller's ``on=``."""

    @property
    def total(self) -> int:
        """Attempts made so far, the SDK's own retries included."""
        return self.attempt + self.sdk_retries

    def assess(self, exc: BaseException | None) -> Decision:
        """Classify the failure of the current attempt (kept on the run) and ask the pure core what follows."""
        options = self.options
        if exc is None:
            classification = _RESULT
            retryable = True
        else:
            known = known_classification(exc)
            if known is None:
                known = classify_at(exc, self.clock.time())
                self._count_sdk_retries(exc)
            classification = known
            on_types = options.on_types
            if on_types is not None:
                retryable = isinstance(exc, on_types)
            elif options.on_predicate is not None:
                retryable = bool(options.on_predicate(exc))
            else:
                retryable = classification.retry
        self.classification = classification
        self.retryable = retryable
        if retryable:
            why = ""  # the core reads it only to give up on what is not retryable
        elif options.on_types is None and options.on_predicate is None:
            why = classification.reason
        else:
            why = f"on= does not match {type(exc).__qualname__}"
        return decide(
            options.policy,
            self.attempt + self.sdk_retries,
            self.clock.monotonic() - self.start,
            retryable,
            why,
            classification.wait,
            _random(),
        )

    def _count_sdk_retries(self, exc: BaseException) -> None:
        count = sdk_retries(exc)
        if not count:
            return
        self.sdk_retries += count
        if self.name not in _warned:
            _warned.add(self.name)
            warnings.warn(
                f"{self.name!r}: the client library already retried this request {count} time(s) itself "
                f"(x-stainless-retry-count), so retries multiply under reliable.retry; create the client with "
                f"max_retries=0 and let reliable.retry do the retrying",
                UserWarning,
                stacklevel=5,
            )

    def budget_denied(self) -> Decision:
        """The budget refused the retry the last decision wanted: report it, and give up instead."""
        budget = self.options.budget
        assert budget is not None
        reason = f"the retry budget {budget.name!r} is exhausted (failing fast instead of adding to a retry storm)"
        _telemetry.emit(
            "retry",
            "budget_exhausted",
            f"not retrying {self.name!r}: {reason}",
            level=logging.WARNING,
            attributes={
                "reliable.operation": self.name,
                "reliable.attempt": self.total,
                "reliable.retry.budget": budget.name,
                "reliable.classification": self.classification.kind,
            },
        )
        return Decision(None, reason)

    def retrying(self, exc: BaseException | None, wait: float) -> None:
        """Report that attempt `total` failed and the next one follows after *wait* seconds.

        The message says why it is retried: the classification (``failed (rate_limited)``), or
        the caller's ``on=`` when it retries what `reliable.classify` would not; the
        classification is always in the ``reliable.classification`` attribute.
        """
        logged = _telemetry.wanted("retry", _WARNING)
        if not logged and not self._span().is_recording():
            # nobody would see more than the count: skip the message and attributes
            _telemetry.count("retry", "attempt", self.name)
            return
        classification = self.classification
        total = self.attempt + self.sdk_retries
        if exc is None:
            because = "retry_on_result rejected the result"
        elif classification.retry:
            because = classification.reason
        else:
            because = f"on= matches {type(exc).__qualname__}"
        if not logged:
            message = "retrying"
        elif exc is None:
            message = f"retrying {self.name!r} in {wait:.3g}s: retry_on_result rejected the result of attempt {total}"
        elif classification.retry:
            message = (
                f"retrying {self.name!r} in {wait:.3g}s: attempt {total} failed "
                f"({classification.kind}): {_describe(exc)}"
            )
        else:
            message = (
                f"retrying {self.name!r} in {wait:.3g}s because on= matches it: "
                f"attempt {total} failed: {_describe(exc)}"
            )
        _telemetry.emit(
            "retry",
            "attempt",
            message,
            level=_WARNING,
            attributes={
                "reliable.operation": self.name,
                "reliable.attempt": total,
                "reliable.retry.wait": wait,
                "reliable.retry.reason": because,
                "error.type": _error_type(exc),
                "reliable.classification": classification.kind,
            },
        )

    def _span(self) -> Any:
        span = self.span
        if span is None:
            try:
                span = self.span = trace.get_current_span()
            except Exception:  # telemetry never breaks the call
                span = self.span = trace.INVALID_SPAN
        return span

    def give_up(self, exc: BaseException | None, decision: Decision) -> None:
        """Add the note to *exc* and report the give-up; a first failure that is simply not retryable stays silent."""
        if self.total == 1 and not self.retryable:
            return
        elapsed = self.clock.monotonic() - self.start
        sdk = f" ({self.sdk_retries} of them inside the client library)" if self.sdk_retries else ""
        note = (
            f"reliable.retry gave up on {self.name!r} after {self.total} attempt(s){sdk} "
            f"over {elapsed:.2f}s: {decision.reason}"
        )
        if exc is not None:
            add_note(exc, note)
        _telemetry.emit(
            "retry",
            "give_up",
            f"{note}; last error: {_describe(exc)}",
            level=logging.ERROR,
            attributes={
                "reliable.operation": self.name,
                "reliable.attempt": self.total,
                "reliable.retry.attempts": self.total,
                "reliable.retry.elapsed": elapsed,
                "reliable.retry.reason": decision.reason,
                "error.type": _error_type(exc),
                "reliable.classification": self.classification.kind,
            },
            exception=exc,
        )
        _mark_span(self.total, self.span)

    def succeeded(self) -> None:
        """The call ended well after retries: put the attempt count on the current span."""
        _mark_span(self.attempt + self.sdk_retries, self.span)


def drive_sync(
    run: Run,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    exc: BaseException | None,
    result: Any = None,
) -> T:
    """Retry ``fn(*args, **kwargs)`` after its first attempt failed with *exc* (or returned a rejected *result*)."""
    options = run.options
    budget = options.budget
    accept = options.retry_on_result
    sleep = run.clock.sleep
    while True:
        decision = run.assess(exc)
        wait = decision.wait
        if wait is not None and budget is not None and not budget.try_acquire():
            decision = run.budget_denied()
            wait = None
        if wait is None:
            run.give_up(exc, decision)
            if exc is not None:
                try:
                    raise exc
                finally:
                    exc = None  # break the exception -> traceback -> frame -> exception cycle
            return cast(T, result)  # the last rejected result
        run.retrying(exc, wait)
        sleep(wait)
        run.attempt += 1
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            exc = error
            continue
        exc = None
        if accept is None or not accept(result):
            run.succeeded()
            return cast(T, result)


async def drive_async(
    run: Run,
    fn: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    exc: BaseException | None,
    result: Any = None,
) -> T:
    """The async twin of `drive_sync`: the same steps, awaiting the call, the budget and the sleep."""
    options = run.options
    budget = options.budget
    accept = options.retry_on_result
    asleep = run.clock.asleep
    while True:
        decision = run.assess(exc)
        wait = decision.wait
        if wait is not None and budget is not None and not await budget.atry_acquire():
            decision = run.budget_denied()
            wait = None
        if wait is None:
            run.give_up(exc, decision)
            if exc is not None:
                try:
                    raise exc
                finally:
                    exc = None  # break the exception -> traceback -> frame -> exception cycle
            return cast(T, result)  # the last rejected result
        run.retrying(exc, wait)
        await asleep(wait)
        run.attempt += 1
        try:
            result = await fn(*args, **kwargs)
        except Exception as error:
            exc = error
            continue
        exc = None
        if accept is None or not accept(result):
            run.succeeded()
            return cast(T, result)
