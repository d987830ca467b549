"""Alert delivery: the `Alert` value, the background thread, throttling through the store, failure reports.

`fire` only queues (a few hundred nanoseconds on the caller's path). The alert thread
then, for each alert:

1. checks the throttle: an in-process cache first, then ``put_if_absent`` of the key
   ``reliable:alert:<operation>:<kind>`` with the throttle as TTL, so one alert per
   operation and kind goes out per window across every process sharing the store
   (a store that fails does not stop the alert: better twice than never);
2. on a recovery notice, deletes the marks of the kinds that recovered, so the next
   failure alerts at once; on any other alert, deletes the ``recovered`` mark;
3. hands the alert to each sink; a sink that raises is reported (`report_failure`).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._internal import _clock, _telemetry

__all__ = ["EXIT_FLUSH_TIMEOUT", "Alert", "fire", "flush", "report_failure", "resolve_sinks"]

EXIT_FLUSH_TIMEOUT = 10.0
"""Seconds the interpreter waits at exit for queued alerts to be delivered."""
ALERT_PREFIX = "reliable:alert:"
SEVERITY = {
    "failure": "error",
    "quota_exhausted": "critical",
    "stale": "error",
    "stuck": "error",
    "lease_lost": "error",
    "degraded": "warning",
    "recovered": "info",
    "test": "info",
}
_log = logging.getLogger("reliable.alerts")
_HOST = socket.gethostname()


@dataclass(frozen=True)
class Alert:
    """One alert, as sinks receive it.

    Attributes:
        kind: ``"failure"``, ``"quota_exhausted"``, ``"degraded"``, ``"stale"``, ``"stuck"``,
            ``"lease_lost"``, ``"recovered"`` or ``"test"``.
        operation: The observed operation's name.
        message: One sentence for people.
        severity: ``"critical"``, ``"error"``, ``"warning"`` or ``"info"``.
        time: When it fired, wall-clock seconds since the epoch (library clock).
        host: The host that fired it.
        details: Error type and message, classification kind, run id, recovered kinds, ...

    .. versionadded:: 0.1.0
    """

    kind: str
    operation: str
    message: str
    severity: str
    time: float
    host: str = _HOST
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, kind: str, operation: str, message: str, **details: Any) -> Alert:
        clean = {k: v for k, v in details.items() if v is not None}
        return cls(kind, operation, message, SEVERITY.get(kind, "error"), _clock.current().time(), _HOST, clean)

    def text(self) -> str:
        """One line: ``[reliable] ERROR failure: sync-orders failed: ...`` (the message names the operation)."""
        return f"[reliable] {self.severity.upper()} {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON body a `reliable.alerts.Webhook` posts."""
        return {
            "kind": self.kind,
            "operation": self.operation,
            "message": self.message,
            "severity": self.severity,
            "time": self.time,
            "host": self.host,
            "details": dict(self.details),
        }


def resolve_sinks(sinks: Sequence[Any] | None, *, strict: bool = False) -> tuple[Any, ...]:
    """The sinks to use: *sinks*, else the configured ones, else `Log`; plain callables become `Callback` s."""
    from . import _config
    from .alerts import Callback, Log

    chosen = sinks if sinks is not None else _config.alert_sinks()
    if chosen is None:
        return (Log(),)
    out: list[Any] = []
    for sink in chosen:
        if hasattr(sink, "send"):
            out.append(sink)
        elif callable(sink):
            out.append(Callback(sink))
        elif strict:
            from ._errors import ConfigError

            msg = (
                f"alert sink {sink!r} has no send(alert) method; pass reliable.alerts.Log(), Webhook(url) or a function"
            )
            raise ConfigError(msg, parameter="sinks", value=sink)
        else:
            out.append(sink)  # reported as a failing sink when it is used
    return tuple(out)


def report_failure(sink: Any, alert: Alert, exc: BaseException) -> None:
    """A sink failed: log it at ERROR and count ``reliable.alerts.sink_failed``. Never raises."""
    _telemetry.emit(
        "alerts",
        "sink_failed",
        f"alert sink {sink!r} failed to deliver the {alert.kind} alert of {alert.operation!r}: {exc}; "
        "fix the sink and check it with reliable.alerts.test()",
        level=logging.ERROR,
        attributes={
            "reliable.operation": alert.operation,
            "reliable.alert.kind": alert.kind,
            "reliable.alert.sink": repr(sink),
            "error.type": type(exc).__qualname__,
        },
    )


@dataclass
class _Job:
    alert: Alert
    sinks: Sequence[Any] | None
    throttle: float | None
    store: Any
    recovered: tuple[str, ...] = ()


class _Dispatcher:
    """One daemon thread delivering queued jobs in order; `flush` waits for the queue to drain."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jobs: deque[_Job] = deque()
        self.pending = 0
        self.thread: threading.Thread | None = None
        self.until: dict[str, float] = {}
        """Throttle marks this process knows of: key -> library monotonic time they end."""

    def submit(self, job: _Job) -> None:
        with self.cond:
            self.jobs.append(job)
            self.pending += 1
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="reliable-alerts", daemon=True)
                self.thread.start()
            self.cond.notify_all()

    def flush(self, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.pending == 0, timeout=timeout)

    def run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: bool(self.jobs))
                job = self.jobs.popleft()
            try:
                self.deliver(job)
            except Exception:  # pragma: no cover - deliver reports everything itself
                _log.exception("alert delivery failed")
            finally:
                with self.cond:
                    self.pending -= 1
                    self.cond.notify_all()

    def deliver(self, job: _Job) -> None:
        alert = job.alert
        if job.throttle and self.throttled(job):
            _telemetry.emit(
                "alerts",
                "throttled",
                f"{alert.kind} alert of {alert.operation!r} throttled",
                level=logging.DEBUG,
                attributes={"reliable.operation": alert.operation, "reliable.alert.kind": alert.kind},
            )
            return
        for sink in resolve_sinks(job.sinks):
            try:
                sink.send(alert)
            except Exception as exc:
                report_failure(sink, alert, exc)
            else:
                _telemetry.emit(
                    "alerts",
                    "sent",
                    f"{alert.kind} alert of {alert.operation!r} sent to {sink!r}",
                    level=logging.DEBUG,
                    attributes={"reliable.operation": alert.operation, "reliable.alert.kind": alert.kind},
                )

    def throttled(self, job: _Job) -> bool:
        """Whether an alert of this operation and kind went out within the throttle window (store-wide)."""
        alert, ttl = job.alert, float(job.throttle or 0.0)
        key = f"{ALERT_PREFIX}{alert.operation}:{alert.kind}"
        clear = [f"{ALERT_PREFIX}{alert.operation}:{k}" for k in job.recovered]
        if alert.kind != "recovered":
            clear.append(f"{ALERT_PREFIX}{alert.operation}:recovered")
        mono = _clock.current().monotonic()
        for stale_key in clear:
            self.until.pop(stale_key, None)
        if self.until.get(key, float("-inf")) > mono:
            return True
        try:
            store = job.store
            if store is None:
                raise RuntimeError("no store")
            for stale_key in clear:
                store.delete(stale_key)
            mark = {"time": alert.time, "host": alert.host, "pid": os.getpid(), "message": alert.message[:200]}
            record, created = store.put_if_absent(key, mark, ttl=ttl)
            left = ttl if created or record.expires_at is None else record.expires_at - store.now()
        except Exception as exc:
            _log.warning(
                "alert throttle store failed (%s); sending the %s alert of %r anyway", exc, alert.kind, alert.operation
            )
            return False
        self.until[key] = mono + left
        return not created


_dispatcher = _Dispatcher()


def _after_fork() -> None:
    global _dispatcher
    _dispatcher = _Dispatcher()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def fire(
    alert: Alert,
    *,
    sinks: Sequence[Any] | None,
    throttle: float | None,
    store: Any,
    recovered: tuple[str, ...] = (),
) -> None:
    """Queue *alert* for delivery by the alert thread. Never raises.

    The sinks and the store are resolved now, in the caller's configuration (a scoped
    ``configured(...)`` may be gone by the time the alert thread delivers).
    """
    try:
        resolved: Any = None
        if throttle:
            try:
                from ._config import resolve_store

                resolved = resolve_store(store)
            except Exception as exc:
                _log.warning(
                    "cannot open the store to throttle the %s alert of %r: %s", alert.kind, alert.operation, exc
                )
        _dispatcher.submit(_Job(alert, resolve_sinks(sinks), throttle, resolved, recovered))
    except Exception:  # pragma: no cover - e.g. no threads left at interpreter shutdown
        _log.exception("could not queue the %s alert of %r", alert.kind, alert.operation)


def flush(timeout: float = EXIT_FLUSH_TIMEOUT) -> bool:
    """Wait until every queued alert has been delivered (or throttled); False if *timeout* seconds passed first.

    .. versionadded:: 0.1.0
    """
    return _dispatcher.flush(timeout)


@atexit.register
def _flush_at_exit() -> None:
    if _dispatcher.pending:
        flush(EXIT_FLUSH_TIMEOUT)
