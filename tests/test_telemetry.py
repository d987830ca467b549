"""The telemetry core: span events, counters, structured logs and listeners, and it never raises."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from reliable._internal import _telemetry
from reliable._internal._telemetry import Event, emit, event_counts, listening


def test_emit_logs_structured_record(caplog: pytest.LogCaptureFixture) -> None:
    """An event becomes a log record on logger reliable.<primitive> with the attributes under record.reliable."""
    with caplog.at_level(logging.WARNING, logger="reliable.retry"):
        emit("retry", "attempt", "retrying", level=logging.WARNING, attributes={"reliable.attempt": 2})

    (record,) = caplog.records
    assert ("reliable.retry", "retrying") == (record.name, record.getMessage())
    assert {"event": "reliable.retry.attempt", "reliable.attempt": 2} == record.reliable  # type: ignore[attr-defined]


def test_emit_counts_by_event_and_operation() -> None:
    """Each event increments the in-process counter of its (name, operation)."""
    key = ("reliable.test.counted", "op-a")
    before = event_counts().get(key, 0)

    emit("test", "counted", "x", attributes={"reliable.operation": "op-a"})
    emit("test", "counted", "x", attributes={"reliable.operation": "op-a"})

    assert before + 2 == event_counts()[key]


def test_emit_adds_span_event_to_recording_span() -> None:
    """With a recording span current, the event is added to it with its attributes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    with tracer.start_as_current_span("outer"):
        emit("idempotent", "replay", "replayed", attributes={"reliable.operation": "k", "obj": object(), "n": None})

    (span,) = exporter.get_finished_spans()
    (event,) = span.events
    assert "reliable.idempotent.replay" == event.name
    assert "k" == event.attributes["reliable.operation"]
    assert "n" not in event.attributes
    assert event.attributes["obj"].startswith("<object")


def test_scoped_listener_sees_only_its_context() -> None:
    """listening() delivers events emitted inside the block to the listener, and none after it."""
    seen: list[Event] = []

    with listening(seen.append):
        emit("single_instance", "skipped", "skipped", attributes={"reliable.operation": "job"})
    emit("single_instance", "skipped", "after", attributes={"reliable.operation": "job"})

    assert ["reliable.single_instance.skipped"] == [e.name for e in seen]


def test_global_listener_added_and_removed() -> None:
    """add_listener receives every event until remove_listener."""
    seen: list[str] = []

    def listener(event: Event) -> None:
        seen.append(event.event)

    _telemetry.add_listener(listener)
    emit("x", "one", "m")
    _telemetry.remove_listener(listener)
    emit("x", "two", "m")

    assert ["one"] == seen


def test_failing_listener_never_raises_into_caller() -> None:
    """A listener that raises is counted as a telemetry failure; emit() still returns normally."""
    before = _telemetry.failures()

    def broken(event: Event) -> None:
        raise RuntimeError("sink down")

    with listening(broken):
        emit("x", "y", "m")

    assert before + 1 == _telemetry.failures()


def test_broken_logging_never_raises_into_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the logging machinery itself fails, emit() swallows it and counts a failure."""
    before = _telemetry.failures()

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(logging.Logger, "handle", explode)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(logging.Logger, "isEnabledFor", lambda self, level: True)
        emit("x", "z", "m")

    assert before + 1 == _telemetry.failures()


def test_counter_observations_export_counts() -> None:
    """The observable counter's callback reports every (event, operation) count."""
    emit("test", "observed", "x", attributes={"reliable.operation": "op-b"})

    observations = list(_telemetry._observe(None))  # type: ignore[arg-type]

    assert any(
        o.attributes == {"event": "reliable.test.observed", "reliable.operation": "op-b"} and o.value >= 1
        for o in observations
    )


def test_remove_listener_removes_an_equal_bound_method() -> None:
    """A listener added as `seen.append` is removed by another `seen.append` (a new, equal bound method)."""
    seen: list[Event] = []
    _telemetry.add_listener(seen.append)
    _telemetry.remove_listener(seen.append)

    emit("x", "after-removal", "m")

    assert [] == seen


class Keep(logging.Handler):
    """A handler that keeps the records it gets, formatting nothing."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def probe() -> Iterator[tuple[logging.Logger, list[logging.LogRecord]]]:
    """The logger ``reliable.probe`` at DEBUG with a handler keeping its records; restored afterwards."""
    logger = logging.getLogger("reliable.probe")
    records: list[logging.LogRecord] = []
    handler = Keep(records)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, records
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.filters.clear()
    logger.disabled = False


def test_record_is_a_plain_stdlib_record(probe: tuple[logging.Logger, list[logging.LogRecord]]) -> None:
    """The record carries what Logger.log would set: level, message, exc_info, the fields under record.reliable.

    Its caller information is emit() itself unless the primitive names one.
    """
    _, records = probe
    error = ValueError("boom")

    emit("probe", "x", "went %s", level=logging.ERROR, attributes={"reliable.operation": "op"}, exception=error)
    emit("probe", "y", "second", caller=("/app/jobs.py", 12, "sync_orders"))

    first, second = records
    assert ("reliable.probe", logging.ERROR, "ERROR", "went %s", ()) == (
        first.name,
        first.levelno,
        first.levelname,
        first.getMessage(),
        first.args,
    )
    assert (ValueError, error) == (first.exc_info[0], first.exc_info[1])  # type: ignore[index]
    assert {"event": "reliable.probe.x", "reliable.operation": "op"} == first.reliable  # type: ignore[attr-defined]
    assert ("_telemetry.py", "emit") == (first.filename, first.funcName)
    assert ("/app/jobs.py", "jobs.py", "jobs", 12, "sync_orders") == (
        second.pathname,
        second.filename,
        second.module,
        second.lineno,
        second.funcName,
    )


def test_record_factory_and_logger_class_are_honoured(
    probe: tuple[logging.Logger, list[logging.LogRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record factory set with logging.setLogRecordFactory and a Logger subclass's makeRecord both make the record."""
    logger, records = probe
    stock = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = stock(*args, **kwargs)
        record.tenant = "acme"
        return record

    class Tagging(logging.Logger):
        def makeRecord(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
            record = super().makeRecord(*args, **kwargs)
            record.tagged = True
            return record

    logging.setLogRecordFactory(factory)
    try:
        emit("probe", "factory", "m")
    finally:
        logging.setLogRecordFactory(stock)
    monkeypatch.setattr(logger, "__class__", Tagging)
    emit("probe", "subclass", "m")

    made_by_factory, made_by_subclass = records
    assert ("acme", "reliable.probe.factory") == (made_by_factory.tenant, made_by_factory.reliable["event"])  # type: ignore[attr-defined]
    assert (True, "reliable.probe.subclass") == (made_by_subclass.tagged, made_by_subclass.reliable["event"])  # type: ignore[attr-defined]


def test_logger_filters_disabled_flag_and_propagation_apply(
    probe: tuple[logging.Logger, list[logging.LogRecord]],
) -> None:
    """A logger filter can drop a record, a disabled logger writes none, and records reach the parent's handlers."""
    logger, records = probe
    parent: list[logging.LogRecord] = []
    handler = Keep(parent)
    logging.getLogger("reliable").addHandler(handler)
    try:
        logger.addFilter(lambda record: record.getMessage() != "dropped")
        emit("probe", "a", "dropped")
        emit("probe", "b", "kept")
        logger.disabled = True
        emit("probe", "c", "while disabled")
    finally:
        logging.getLogger("reliable").removeHandler(handler)

    assert (["kept"], ["kept"]) == ([r.getMessage() for r in records], [r.getMessage() for r in parent])


def test_event_counts_sum_every_thread_including_ended_ones() -> None:
    """Events counted in many short-lived threads (each its own table, folded when it ends) are all in the total."""
    import threading

    from reliable._internal import _metrics

    name = f"counted-{id(object())}"

    def worker() -> None:
        for _ in range(5):
            _telemetry.count("test", "tick", name)

    for _ in range(40):  # more threads than tables kept before ended ones are folded
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    _telemetry.count("test", "tick", name)

    assert 201 == event_counts()[("reliable.test.tick", name)]
    assert len(_metrics._events) <= 33
