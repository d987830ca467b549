"""`ObservedRun`: one call of an observed operation, from `begin` to `conclude` (no I/O), plus its drivers."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.trace import Status, StatusCode

from . import _heartbeat
from . import _observed_effects as _effects
from ._heartbeat import Finish, Transition
from ._internal import _clock, _metrics, _otel, _telemetry
from ._internal._metrics import record_call as _record_call
from ._internal._metrics import thread_calls as _thread_calls
from ._internal._telemetry import _scoped
from ._internal._telemetry import _state as _telemetry_state

__all__ = ["ObservedRun"]

_trace_api = trace
_SLOW_TRACE = not _otel._FAST_TRACE
_SLOW_METER = not _otel._FAST_METER
"""Whether finding the tracer provider needs the API's getter (an OTEL_PYTHON_TRACER_PROVIDER variable)."""
_LEVELS = {"ok": logging.INFO, "skipped": logging.INFO, "degraded": logging.WARNING, "error": logging.ERROR}
_log = logging.getLogger("reliable.observed")


class ObservedRun:
    """One call of an observed operation; the ``as`` target of ``with reliable.observed(...) as run``.

    Attributes:
        run_id: The run's id when the operation records heartbeats, else None.
        outcome: ``"ok"``, ``"error"``, ``"degraded"`` or ``"skipped"`` once the call ended, else None.
        retries: Retry attempts reported inside the call so far.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "__dict__",
        "_clock",
        "_ctx",
        "_listening",
        "_owner",
        "_plain",
        "_span",
        "_t0",
        "_where",
        "duration",
        "outcome",
    )
    # The attributes every call sets are slots; the rest default to these class attributes.

    run_id: str | None = None
    result: Any = None
    has_result = False
    skipped = False
    retries = 0
    reason: str | None = None
    error: str | None = None
    error_type: str | None = None
    error_kind: str | None = None
    _started_at: float | None = None
    _record: dict[str, Any] | None = None
    _version: int | None = None
    _touched = float("-inf")

    def __init__(
        self,
        owner: Any,
        attributes: dict[str, Any],
        heartbeat: tuple[dict[str, Any], float | None, int | None] | None = None,
        where: _telemetry.Caller | None = None,
    ) -> None:
        """Begin the call: open the span (only with a real SDK), listen to inner primitives, start the clock.

        *heartbeat* is the run record and, if the store recorded it, its start (store time) and version.
        *where* is the caller information of the end-of-call log record (the decorated function).
        """
        self._owner = owner
        self._where = where
        self._plain = True  # no event heard, not degraded by hand: the fast path of conclude
        self._span: Any = None
        self.outcome: str | None = None
        if heartbeat is not None:
            self._record, self._started_at, self._version = heartbeat
            self.run_id = self._record["run_id"]
        self._clock = clock = _clock._current  # what _clock.current() returns, without the call
        if _otel._override_tracer_provider is not None or _trace_api._TRACER_PROVIDER is not None or _SLOW_TRACE:
            tracer = _otel.tracer()  # (without an SDK, the test above is all it costs)
            if tracer is not None:
                self._open_span(tracer, attributes)
        current = _scoped.get()
        if current:
            current = tuple(x for x in current if not isinstance(x, ObservedRun))
        self._listening = _scoped.set((*current, self))
        self._t0 = clock.monotonic()

    @property
    def name(self) -> str:
        """The operation's name."""
        name: str = self._owner.name
        return name

    def __repr__(self) -> str:
        return f"<ObservedRun {self.name!r} run_id={self.run_id} outcome={self.outcome}>"

    # -- what the code inside the call may say ---------------------------------------

    def set_result(self, value: Any) -> Any:
        """Give the ``with`` block's result to ``expect=`` (checked when the block ends); returns *value*."""
        self.result, self.has_result = value, True
        return value

    def degrade(self, reason: str) -> None:
        """Mark this call ``degraded`` (bad or missing output) with *reason*, whatever ``expect=`` says."""
        self.reason = str(reason)
        self._plain = False

    def set_attribute(self, key: str, value: str | bool | int | float) -> None:
        """Add an attribute to the call's span (if a real SDK records it)."""
        if self._span is not None:
            self._span.set_attribute(key, value)

    # -- core: begin (__init__) and conclude, no I/O ------------------------------------

    def _open_span(self, tracer: trace.Tracer, attributes: dict[str, Any]) -> None:
        try:
            if self.run_id is not None:
                attributes = {**attributes, "reliable.run_id": self.run_id}
            self._span = span = tracer.start_span(
                self.name, attributes=attributes or None, record_exception=False, set_status_on_exception=False
            )
            self._ctx = otel_context.attach(trace.set_span_in_context(span))
        except Exception:  # telemetry must never break the call
            self._span = None
            _log.debug("could not start the span of %r", self.name, exc_info=True)

    def __call__(self, event: _telemetry.Event) -> None:
        """Listener: what the primitives inside this call report."""
        self._plain = False
        name = event.name
        if name == "reliable.single_instance.skipped":
            self.skipped = True
        elif name == "reliable.retry.attempt":
            self.retries += 1
        elif name == "reliable.single_instance.renewed":
            self._touch()
        elif name == "reliable.single_instance.lost" or event.event == "lease_lost":
            self._alert("lease_lost", f"lost its lease while running: {event.message}", {})

    def conclude(self, exc: BaseException | None, result: Any, has_result: bool) -> str:
        """Decide the outcome, close the span, count, log; return the outcome. Never raises."""
        self.duration = duration = self._clock.monotonic() - self._t0
        if exc is None and self._plain and (not has_result or self._owner.expect is None):
            # The common case (ok, nothing heard inside): the general path below, minus what cannot apply.
            self.outcome = "ok"
            try:
                _scoped.reset(self._listening)
                span = self._span
                if span is not None:
                    span.set_attribute("reliable.outcome", "ok")
                if _telemetry_state.listeners or _scoped.get() or _log.isEnabledFor(logging.INFO):
                    self._report("ok", logging.INFO, None)
                if span is not None:
                    otel_context.detach(self._ctx)
                    span.end()
                owner = self._owner
                counts = _thread_calls()  # what _record_call does, inline: this is the hot path
                counts[owner.ok_key] = counts.get(owner.ok_key, 0) + 1
                if (
                    _otel._override_meter_provider is not None
                    or _metrics_api._METER_PROVIDER is not None
                    or _SLOW_METER
                ):
                    _metrics.queue_duration(owner.name, "ok", duration, "")  # only if an SDK may be set
            except Exception:  # telemetry must never break the call
                _log.debug("telemetry of %r failed", self.name, exc_info=True)
            return "ok"
        outcome = "ok"
        if exc is not None and not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            outcome, self.error_type, self.error_kind = "error", _effects.error_type(exc), _effects.error_kind(exc)
            self.error = f"{type(exc).__name__}: {exc}"[:500]
        elif self.skipped:
            outcome = "skipped"
        elif self.reason is not None:
            outcome = "degraded"
        elif has_result and self._owner.expect is not None:
            self.reason = self._check(result)
            if self.reason is not None:
                outcome = "degraded"
        self.outcome = outcome
        try:
            _scoped.reset(self._listening)
            span = self._span
            if span is not None:
                self._close_span(span, outcome, exc)
            level = _LEVELS[outcome]
            if _telemetry_state.listeners or _scoped.get() or _log.isEnabledFor(level):
                self._report(outcome, level, exc)
            if span is not None:
                otel_context.detach(self._ctx)
                span.end()
            _record_call(self._owner.name, outcome, self.duration, self.error_type or "")
        except Exception:  # telemetry must never break the call
            _log.debug("telemetry of %r failed", self.name, exc_info=True)
        return outcome

    def _check(self, result: Any) -> str | None:
        """None if ``expect(result)`` holds, else why not (an ``expect`` that raises counts as failing)."""
        try:
            if self._owner.expect(result):
                return None
        except Exception as exc:
            return f"expect= raised {type(exc).__name__}: {exc}"[:500]
        return f"expect= is false for the result {result!r:.200}"

    def _close_span(self, span: Any, outcome: str, exc: BaseException | None) -> None:
        span.set_attribute("reliable.outcome", outcome)
        if outcome == "error" and exc is not None:
            kind = self.error_kind
            span.record_exception(exc, attributes={"reliable.error.kind": kind} if kind else None)
            span.set_attribute("error.type", self.error_type or "")
            span.set_status(Status(StatusCode.ERROR, self.error))
        elif outcome == "degraded":
            span.add_event("reliable.observed.degraded", {"reliable.reason": self.reason or ""})
            span.set_status(Status(StatusCode.ERROR, f"degraded: {self.reason}"))

    def _report(self, outcome: str, level: int, exc: BaseException | None) -> None:
        _effects.report(self, outcome, level, exc)

    def finish_record(self) -> Finish:
        """How the run ended, for the heartbeat and the alerts (store time)."""
        started = self._started_at
        if started is None:
            started = self._clock.time() - self.duration
        outcome = self.outcome or "ok"
        return Finish(
            self.run_id or "",
            started,
            self.duration,
            outcome,
            self.error,
            self.error_type,
            self.error_kind,
            self.reason,
        )

    # -- heartbeat drivers ------------------------------------------------------------

    def _store(self) -> Any:
        return _effects.store_of(self._owner)

    @classmethod
    def start(cls, owner: Any, attributes: dict[str, Any], where: _telemetry.Caller | None = None) -> ObservedRun:
        """Record the run as in progress (blocking store), then begin it."""
        record = _effects.new_record(owner)
        started: tuple[float | None, int | None] = (None, None)
        try:
            started = _heartbeat.drive(_effects.store_of(owner), _heartbeat.start_flow(owner.spec, record))
        except Exception as exc:
            _effects.store_failed(owner.name, "record the start of", exc)
        return cls(owner, attributes, (record, *started), where)

    @classmethod
    async def astart(
        cls, owner: Any, attributes: dict[str, Any], where: _telemetry.Caller | None = None
    ) -> ObservedRun:
        """Record the run as in progress (async store), then begin it."""
        record = _effects.new_record(owner)
        started: tuple[float | None, int | None] = (None, None)
        try:
            started = await _heartbeat.adrive(_effects.store_of(owner), _heartbeat.start_flow(owner.spec, record))
        except Exception as exc:
            _effects.store_failed(owner.name, "record the start of", exc)
        return cls(owner, attributes, (record, *started), where)

    def finish(self, exc: BaseException | None, result: Any, has_result: bool) -> None:
        """`conclude`, then record the heartbeat (sync store) and send the alerts it causes."""
        outcome = self.conclude(exc, result, has_result)
        if self._started_at is None:
            if (outcome == "error" or outcome == "degraded" or _effects._local) and self._owner.policy is not None:
                self._after(self.finish_record(), None)
            return
        fin = self.finish_record()
        transition = None
        try:
            transition = _heartbeat.drive(self._store(), _heartbeat.finish_flow(self._owner.spec, fin))
        except Exception as error:
            _effects.store_failed(self.name, "record the end of", error)
        self._after(fin, transition)

    async def afinish(self, exc: BaseException | None, result: Any, has_result: bool) -> None:
        """`conclude`, then record the heartbeat (async store) and send the alerts it causes."""
        outcome = self.conclude(exc, result, has_result)
        if self._started_at is None:
            if (outcome == "error" or outcome == "degraded" or _effects._local) and self._owner.policy is not None:
                self._after(self.finish_record(), None)
            return
        fin = self.finish_record()
        transition = None
        try:
            transition = await _heartbeat.adrive(self._store(), _heartbeat.finish_flow(self._owner.spec, fin))
        except Exception as error:
            _effects.store_failed(self.name, "record the end of", error)
        self._after(fin, transition)

    def _after(self, fin: Finish, transition: Transition | None) -> None:
        _effects.after(self._owner, fin, transition)

    def _alert(self, kind: str, text: str, details: dict[str, Any]) -> None:
        _effects.alert(self._owner, kind, text, details)

    def _touch(self) -> None:
        """The lock inside was renewed: mark the run alive (at most once a second)."""
        if self._version is None or self._record is None:
            return
        now = self._clock.monotonic()
        if now - self._touched < 1.0:
            return
        self._touched = now
        try:
            flow = _heartbeat.touch_flow(self._owner.spec, self._record, self._version)
            self._version = _heartbeat.drive(self._store(), flow)
        except Exception as exc:
            _effects.store_failed(self.name, "renew the heartbeat of", exc)

    # -- alerts ------------------------------------------------------------------------
