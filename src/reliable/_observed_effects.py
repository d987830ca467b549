"""What an observed run reports and causes besides its span: the log record, heartbeat helpers, alerts."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from opentelemetry import trace

from . import _alerting, _heartbeat
from ._heartbeat import Finish, Transition
from ._internal import _telemetry

__all__ = ["after", "alert", "error_kind", "error_type", "new_record", "report", "store_failed", "store_of"]

_HOST = socket.gethostname()
_local: dict[str, dict[str, Any]] = {}
"""Alert state of operations without heartbeats, kept only while something is open or failing."""
_local_lock = threading.Lock()
_classify: list[Any] = []


def error_type(exc: BaseException) -> str:
    """OpenTelemetry's ``error.type`` for *exc*: its fully qualified class name (no module for builtins)."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def error_kind(exc: BaseException) -> str | None:
    """`reliable.classify(exc).kind`, ``"cancelled"`` for a `BaseException` that is not an `Exception`,
    or None if the classifier is missing or fails."""
    if not _classify:
        try:
            from ._classify import classify
        except ImportError:  # pragma: no cover - the classifier ships with reliable
            _classify.append(None)
        else:
            _classify.append(classify)
    if not isinstance(exc, Exception):
        return "cancelled"  # KeyboardInterrupt, asyncio.CancelledError, SystemExit(1): stopped, not broken
    classify_ = _classify[0]
    if classify_ is None:
        return None
    try:
        return str(classify_(exc).kind)
    except Exception:
        return None


def report(run: Any, outcome: str, level: int, exc: BaseException | None) -> None:
    """Write the end-of-call log record of *run* (and hand it to the telemetry listeners)."""
    duration = run.duration
    name = run._owner.name
    attributes: dict[str, Any] = {
        "reliable.operation": name,
        "reliable.outcome": outcome,
        "reliable.duration": round(duration, 6),
    }
    span = run._span
    context = (span if span is not None else trace.get_current_span()).get_span_context()
    if context.is_valid:
        attributes["trace_id"] = format(context.trace_id, "032x")
        attributes["span_id"] = format(context.span_id, "016x")
    if run.run_id is not None:
        attributes["reliable.run_id"] = run.run_id
    if run.retries:
        attributes["reliable.retries"] = run.retries
    if outcome == "ok":
        message = f"{name} ok in {duration:.3f}s"
    elif outcome == "error":
        kind = run.error_kind
        attributes.update({"error.type": run.error_type, "error.message": run.error, "reliable.error.kind": kind})
        message = f"{name} failed in {duration:.3f}s: {run.error}" + (f" ({kind})" if kind else "")
    elif outcome == "degraded":
        attributes["reliable.reason"] = run.reason
        message = f"{name} degraded in {duration:.3f}s: {run.reason}"
    else:
        message = f"{name} skipped: another run holds its lock"
    report_exc = exc if outcome == "error" else None
    caller = run._where or _telemetry.outside_caller()  # the decorated function, else the `with` block
    _telemetry.report(
        "observed", "finished", message, level=level, attributes=attributes, exception=report_exc, caller=caller
    )


def after(owner: Any, fin: Finish, transition: Transition | None) -> None:
    """Send the alerts a finished run causes (from the store summary, or the in-process state)."""
    if owner.policy is None or fin.kind == "cancelled":  # an interrupted run is recorded, not alerted
        return
    if transition is None:
        if fin.outcome in ("ok", "skipped") and not _local:
            return
        transition = _local_transition(owner.spec, fin)
    if transition is None:
        return
    details = {
        "error": fin.error,
        "error_type": fin.error_type,
        "error_kind": fin.kind,
        "reason": fin.reason,
        "run_id": fin.run_id or None,
        "duration": round(fin.duration, 6),
    }
    for kind in transition.fire:
        alert(owner, kind, _MESSAGES[kind].format(error=fin.error, reason=fin.reason), details)
    if transition.recovered:
        text = f"is healthy again (recovered from: {', '.join(transition.recovered)})"
        alert(owner, "recovered", text, {"recovered": list(transition.recovered)}, transition.recovered)


def alert(owner: Any, kind: str, text: str, details: dict[str, Any], recovered: tuple[str, ...] = ()) -> None:
    """Queue one alert of *owner*'s operation through its policy (nothing without one)."""
    policy = owner.policy
    if policy is None:
        return
    made = _alerting.Alert.make(kind, owner.name, f"{owner.name} {text}", **details)
    _alerting.fire(made, sinks=policy.sinks, throttle=policy.throttle_seconds, store=owner.store, recovered=recovered)


def store_of(owner: Any) -> Any:
    from ._config import resolve_store

    return resolve_store(owner.store)


def new_record(owner: Any) -> dict[str, Any]:
    spec = owner.spec
    return {
        "run_id": os.urandom(8).hex(),
        "name": owner.name,
        "host": _HOST,
        "pid": os.getpid(),
        "max_age": spec.max_age,
        "max_runtime": spec.max_runtime,
    }


def store_failed(name: str, what: str, exc: Exception) -> None:
    _telemetry.emit(
        "observed",
        "heartbeat_failed",
        f"could not {what} {name!r} in the store: {exc}; the call itself goes on",
        level=logging.WARNING,
        attributes={"reliable.operation": name, "error.type": error_type(exc)},
    )


_MESSAGES = {
    "failure": "failed: {error}",
    "quota_exhausted": "failed: a quota or credit limit is exhausted ({error}); retries cannot help until it is raised",
    "degraded": "ran but its output failed the expect= check: {reason}",
}


def _local_transition(spec: _heartbeat.Spec, fin: Finish) -> Transition | None:
    """`apply_finish` on the in-process state of an operation without heartbeats."""
    with _local_lock:
        summary = _local.get(spec.name)
        if summary is None and fin.outcome in ("ok", "skipped"):
            return None
        updated, transition = _heartbeat.apply_finish(summary, fin, spec)
        if updated["open_alerts"] or updated["failing"] or updated["consecutive_failures"]:
            _local[spec.name] = updated
        else:
            _local.pop(spec.name, None)
    return transition
