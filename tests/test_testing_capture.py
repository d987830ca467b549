"""reliable.testing.capture_telemetry: events, counts, log records, spans, metrics and alerts of a block."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import reliable
import reliable.alerts
from reliable._internal import _otel, _telemetry
from reliable._internal._telemetry import emit
from reliable.stores.memory import MemoryStore
from reliable.testing import capture_telemetry


def test_events_by_primitive_event_and_operation() -> None:
    """events('retry') is every retry event; 'retry.attempt' one event; operation= narrows to one operation."""
    with capture_telemetry() as telemetry:
        emit("retry", "attempt", "a", attributes={"reliable.operation": "fetch"})
        emit("retry", "attempt", "b", attributes={"reliable.operation": "other"})
        emit("retry", "gave_up", "c", attributes={"reliable.operation": "fetch"})
        emit("idempotent", "replay", "d", attributes={"reliable.operation": "fetch"})

    assert 3 == len(telemetry.events("retry"))
    assert ["a", "b"] == [e.message for e in telemetry.events("retry.attempt")]
    assert ["a"] == [e.message for e in telemetry.events("reliable.retry.attempt", operation="fetch")]
    assert 4 == len(telemetry.events())
    assert {"reliable.retry.attempt": 2, "reliable.retry.gave_up": 1, "reliable.idempotent.replay": 1} == dict(
        telemetry.counts()
    )


def test_events_of_other_threads_are_captured() -> None:
    """The listener is global: events emitted by other threads during the block are captured too."""
    with capture_telemetry() as telemetry:
        thread = threading.Thread(target=emit, args=("single_instance", "renewed", "r"))
        thread.start()
        thread.join()

    assert ["reliable.single_instance.renewed"] == [e.name for e in telemetry.events()]


def test_nothing_is_captured_after_the_block() -> None:
    """Leaving the block removes the listener and the log handler."""
    listeners, handlers = _telemetry._state.listeners, list(logging.getLogger("reliable").handlers)

    with capture_telemetry() as telemetry:
        inside = len(_telemetry._state.listeners)
    emit("retry", "attempt", "late", level=logging.WARNING)

    assert ([], []) == (telemetry.events(), telemetry.logs())
    assert (len(listeners) + 1, listeners) == (inside, _telemetry._state.listeners)
    assert handlers == logging.getLogger("reliable").handlers


def test_logs_are_captured_at_debug_and_filtered() -> None:
    """Log records of every reliable logger are captured (even DEBUG), filtered by primitive and level."""
    logger = logging.getLogger("reliable")
    level = logger.level

    with capture_telemetry() as telemetry:
        emit("retry", "attempt", "debug detail", level=logging.DEBUG)
        emit("retry", "gave_up", "gave up", level=logging.ERROR)
        emit("observed", "call", "ok", level=logging.INFO)

    assert ["debug detail", "gave up"] == [r.getMessage() for r in telemetry.logs("retry")]
    assert ["gave up"] == [r.getMessage() for r in telemetry.logs(level=logging.ERROR)]
    assert ["ok"] == [r.getMessage() for r in telemetry.logs("reliable.observed")]
    assert level == logger.level


def test_spans_and_span_events_from_reliables_tracer() -> None:
    """Spans started with reliable's tracer during the block are captured with their span events."""
    with capture_telemetry() as telemetry:
        tracer = _otel.tracer()
        assert tracer is not None
        with tracer.start_as_current_span("sync-orders"):
            emit("retry", "attempt", "retrying", attributes={"reliable.operation": "sync-orders"})

    (span,) = telemetry.spans("sync-orders")
    assert [] == telemetry.spans("other")
    assert [("sync-orders", "reliable.retry.attempt")] == [(n, e.name) for n, e in telemetry.span_events("retry")]
    assert "sync-orders" == span.events[0].attributes["reliable.operation"]


def test_each_capture_starts_empty() -> None:
    """A second capture sees none of the first one's spans or events; no global provider is set."""
    with capture_telemetry() as first:
        tracer = _otel.tracer()
        assert tracer is not None
        with tracer.start_as_current_span("one"):
            emit("retry", "attempt", "x")
    with capture_telemetry() as second:
        pass

    assert (1, 0, 0) == (len(first.spans()), len(second.spans()), len(second.events()))
    assert _otel.override_meter_provider() is None


def test_event_metrics_are_relative_to_the_start() -> None:
    """metrics('reliable.events') counts only the events of the block, though the counter is process-wide."""
    emit("retry", "attempt", "before", attributes={"reliable.operation": "metered"})

    with capture_telemetry() as telemetry:
        emit("retry", "attempt", "inside", attributes={"reliable.operation": "metered"})
        emit("retry", "attempt", "inside", attributes={"reliable.operation": "metered"})
        counted = telemetry.metric(
            "reliable.events", {"event": "reliable.retry.attempt", "reliable.operation": "metered"}
        )
        points = telemetry.metrics("reliable.events")

    assert 2 == counted
    assert all(p.name == "reliable.events" and p.sum is None for p in points)


def test_clear_forgets_everything() -> None:
    """clear() empties events, logs, spans and resets the metric baseline."""
    with capture_telemetry() as telemetry:
        emit("retry", "attempt", "x", attributes={"reliable.operation": "cleared"})
        telemetry.clear()
        emit("retry", "attempt", "y", attributes={"reliable.operation": "cleared"})
        counted = telemetry.metric("reliable.events", {"reliable.operation": "cleared"})

    assert (["y"], 1) == ([e.message for e in telemetry.events()], counted)


def test_alerts_sent_failed_and_filtered() -> None:
    """alerts() waits for delivery and lists each sink's alert: sent, or failed with the sink named."""
    delivered: list[Any] = []

    def broken_pager(alert: Any) -> None:
        raise RuntimeError("pager down")

    @reliable.observed("nightly", alert=[reliable.alerts.Callback(delivered.append), broken_pager], store=MemoryStore())
    def nightly() -> None:
        raise ValueError("no rows")

    with capture_telemetry() as telemetry:
        with pytest.raises(ValueError, match="no rows"):
            nightly()
        emit("alerts", "queued", "not a delivery", attributes={"reliable.operation": "nightly"})
        alerts = telemetry.alerts()

    assert [("nightly", "failure", "sent"), ("nightly", "failure", "failed")] == [
        (a.operation, a.kind, a.outcome) for a in alerts
    ]
    assert "broken_pager" in alerts[1].sink
    assert ([], 1) == (telemetry.alerts("stale"), len(telemetry.alerts(operation="nightly", kind="failure")) - 1)
    assert 1 == len(delivered)
