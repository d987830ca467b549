"""`capture_telemetry`: the spans, metrics, log records, alerts and events `reliable` produced in a block.

Spans and metrics come from an OpenTelemetry SDK ``TracerProvider`` (with an
``InMemorySpanExporter``) and ``MeterProvider`` (with an ``InMemoryMetricReader``) made
for the capture and installed for `reliable` only, with
``reliable._internal._otel.use_providers``: the API's global providers can be set only
once per process, so they are left alone, and every capture starts empty. Spans your
own code makes through the global provider are therefore not captured. Events come
from a telemetry listener, log records from a handler on the ``reliable`` logger (set
to DEBUG for the capture), alerts from the ``reliable.alerts.*`` events every sink's
delivery emits.
The SDK is imported only when a capture starts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .._internal import _otel, _telemetry
from .._internal._telemetry import Event

__all__ = ["CapturedAlert", "CapturedTelemetry", "MetricPoint", "capture_telemetry"]


@dataclass(frozen=True)
class MetricPoint:
    """One data point of a metric, relative to the start of the capture.

    Attributes:
        name: The instrument, e.g. ``"reliable.calls"``, ``"reliable.events"``, ``"reliable.duration"``.
        attributes: The point's attributes.
        value: A counter's increase during the capture, or a histogram's count.
        sum: A histogram's sum (None for counters).

    .. versionadded:: 0.1.0
    """

    name: str
    attributes: Mapping[str, Any]
    value: float
    sum: float | None = None


@dataclass(frozen=True)
class CapturedAlert:
    """One alert as a sink received it (or failed to, or it was throttled).

    Attributes:
        operation: The observed operation.
        kind: ``"failure"``, ``"quota_exhausted"``, ``"degraded"``, ``"stale"``, ``"stuck"``, ``"lease_lost"``, ...
        outcome: ``"sent"``, ``"failed"`` (the sink raised; reported, never raised to the caller) or ``"throttled"``.
        sink: The failing sink's repr (for ``"failed"``).
        message: The telemetry message.

    .. versionadded:: 0.1.0
    """

    operation: str
    kind: str
    outcome: str
    sink: str
    message: str


_ALERT_OUTCOMES = {"sent": "sent", "sink_failed": "failed", "throttled": "throttled"}


class _Handler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class CapturedTelemetry:
    """What `reliable` reported during a `capture_telemetry` block (or a test, with ``reliable_telemetry``).

    Names match loosely so assertions stay short: ``"retry"`` means every event of the retry
    primitive, ``"retry.attempt"`` or ``"reliable.retry.attempt"`` one event.

    .. versionadded:: 0.1.0
    """

    def __init__(self, exporter: Any, reader: Any) -> None:
        self._exporter = exporter
        self._reader = reader
        self._events: list[Event] = []
        self._records: list[logging.LogRecord] = []
        self._baseline: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[float, float | None]] = {}

    def events(self, name: str | None = None, *, operation: str | None = None) -> list[Event]:
        """The events of a primitive (``"retry"``) or one event (``"retry.attempt"``), optionally of one *operation*."""
        found = [e for e in list(self._events) if _matches(e.name, name)]
        if operation is not None:
            found = [e for e in found if e.attributes.get("reliable.operation") == operation]
        return found

    def counts(self) -> Counter[str]:
        """How many times each event was emitted: ``counts()["reliable.retry.attempt"]``."""
        return Counter(e.name for e in list(self._events))

    def spans(self, name: str | None = None) -> list[Any]:
        """Finished spans (the SDK's ``ReadableSpan``), all or those called *name*."""
        return [s for s in self._exporter.get_finished_spans() if name is None or s.name == name]

    def span_events(self, name: str | None = None) -> list[tuple[str, Any]]:
        """``(span name, span event)`` pairs for the span events called *name* (loose, as for `events`)."""
        return [(s.name, e) for s in self.spans() for e in s.events if _matches(e.name, name)]

    def logs(self, name: str | None = None, *, level: int | None = None) -> list[logging.LogRecord]:
        """Log records of the ``reliable`` loggers: all, a primitive's (``"retry"``), and at *level* or above."""
        found = list(self._records)
        if name is not None:
            logger = name if name.startswith("reliable") else f"reliable.{name}"
            found = [r for r in found if r.name == logger or r.name.startswith(logger + ".")]
        if level is not None:
            found = [r for r in found if r.levelno >= level]
        return found

    def alerts(self, kind: str | None = None, *, operation: str | None = None) -> list[CapturedAlert]:
        """Alerts handed to a sink (sent, failed or throttled), after waiting for delivery; filtered by *kind*.

        Delivery happens on a background thread, so this first waits (up to 5 s) for the queue to drain.
        """
        from .._alerting import flush

        flush(5.0)
        found = []
        for event in self.events("alerts"):
            outcome = _ALERT_OUTCOMES.get(event.event)
            if outcome is None:
                continue
            attributes = event.attributes
            captured = CapturedAlert(
                operation=str(attributes.get("reliable.operation", "")),
                kind=str(attributes.get("reliable.alert.kind", "")),
                outcome=outcome,
                sink=str(attributes.get("reliable.alert.sink", "")),
                message=event.message,
            )
            if (kind is None or captured.kind == kind) and (operation is None or captured.operation == operation):
                found.append(captured)
        return found

    def metrics(self, name: str | None = None) -> list[MetricPoint]:
        """Data points collected now, relative to the start of the capture (counters as increases)."""
        points = []
        for key, (value, total) in _collect(self._reader).items():
            metric, attributes = key
            if name is not None and metric != name:
                continue
            before, before_sum = self._baseline.get(key, (0.0, None))
            delta_sum = None if total is None else total - (before_sum or 0.0)
            if value - before or delta_sum:
                points.append(MetricPoint(metric, dict(attributes), value - before, delta_sum))
        return points

    def metric(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        """The sum of `metrics` of *name* whose attributes include *attributes*: ``metric("reliable.calls", {...})``."""
        wanted = dict(attributes or {})
        return sum(p.value for p in self.metrics(name) if all(p.attributes.get(k) == v for k, v in wanted.items()))

    def clear(self) -> None:
        """Forget everything captured so far."""
        self._events.clear()
        self._records.clear()
        self._exporter.clear()
        self._baseline = _collect(self._reader)

    def _start(self, meter_provider: Any) -> None:
        from .._internal import _metrics

        _metrics._instruments_for(meter_provider)  # reliable's instruments report here from the start
        self._baseline = _collect(self._reader)


def _matches(full: str, name: str | None) -> bool:
    if name is None:
        return True
    wanted = name if name.startswith("reliable.") else f"reliable.{name}"
    return full == wanted or full.startswith(wanted + ".")


def _collect(reader: Any) -> dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[float, float | None]]:
    data = reader.get_metrics_data()
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[float, float | None]] = {}
    if data is None:
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    if hasattr(point, "count") and hasattr(point, "sum"):
                        found[key] = (float(point.count), float(point.sum))
                    else:
                        found[key] = (float(point.value), None)
    return found


@contextmanager
def capture_telemetry() -> Iterator[CapturedTelemetry]:
    """Capture what `reliable` reports inside the block: spans, metrics, log records, alerts and events.

    >>> from reliable._internal._telemetry import emit
    >>> with capture_telemetry() as telemetry:
    ...     emit("retry", "attempt", "retrying", attributes={"reliable.operation": "fetch"})
    >>> [e.name for e in telemetry.events("retry")], telemetry.counts()["reliable.retry.attempt"]
    (['reliable.retry.attempt'], 1)

    .. versionadded:: 0.1.0
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    captured = CapturedTelemetry(exporter, reader)
    logger = logging.getLogger("reliable")
    handler = _Handler(captured._records)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    listener = captured._events.append
    _telemetry.add_listener(listener)
    try:
        with _otel.use_providers(tracer_provider=tracer_provider, meter_provider=meter_provider):
            captured._start(meter_provider)
            yield captured
    finally:
        _telemetry.remove_listener(listener)
        logger.removeHandler(handler)
        logger.setLevel(level)
