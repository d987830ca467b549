"""`reliable.observed`: the span, metrics and log record of each call, for every outcome and every form.

How spans and metrics are collected: the OpenTelemetry API lets a process set its global
tracer and meter providers only once, so this module never sets them. The `otel` fixture
makes an SDK ``TracerProvider`` with an ``InMemorySpanExporter`` and a ``MeterProvider``
with an ``InMemoryMetricReader`` per test and hands them to `reliable` alone through
``reliable._internal._otel.use_providers`` (the same hook the ``reliable_telemetry``
fixture uses). Every test uses its own operation name, so process-wide counters do not mix.

Each behaviour runs in the four forms of `observed` (the `mode` fixture): decorator of a
sync function, decorator of a coroutine function, ``with`` and ``async with``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.trace import NoOpTracerProvider, StatusCode

import reliable
from reliable._internal import _metrics, _otel, _telemetry

if TYPE_CHECKING:
    from observed_support import Mode, Otel, Records
    from reliable.testing import FakeClock

pytest_plugins = ["observed_support"]
"""Fixtures: otel, name, clock, records, mode."""


def finished(records: Records, name: str) -> list[logging.LogRecord]:
    return [r for r in records if r.name == "reliable.observed" and r.reliable["reliable.operation"] == name]  # type: ignore[attr-defined]


# -- ok ----------------------------------------------------------------------------------------------


def test_ok_call_leaves_span_metrics_and_info_record(
    mode: Mode, otel: Otel, clock: FakeClock, records: Records, name: str
) -> None:
    """An ok call: one span named by the operation, calls{ok} + 1, its duration recorded, one INFO record."""

    def body() -> int:
        clock.advance(2.5)
        return 7

    result = mode.run(reliable.observed(name, attributes={"team": "data"}), body)

    assert 7 == result
    (span,) = otel.spans(name)
    assert StatusCode.UNSET == span.status.status_code
    assert {"reliable.outcome": "ok", "team": "data"}.items() <= dict(span.attributes).items()
    (calls,) = otel.points("reliable.calls", name)
    assert ({"reliable.operation": name, "reliable.outcome": "ok"}, 1) == (dict(calls.attributes), calls.value)
    (duration,) = otel.points("reliable.duration", name)
    assert (1, 2.5) == (duration.count, duration.sum)
    (record,) = finished(records, name)
    assert logging.INFO == record.levelno
    fields = record.reliable  # type: ignore[attr-defined]
    assert ("ok", 2.5) == (fields["reliable.outcome"], fields["reliable.duration"])
    assert (format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")) == (
        fields["trace_id"],
        fields["span_id"],
    )


def test_log_record_names_the_users_code(records: Records, name: str) -> None:
    """The end-of-call record's pathname, lineno and funcName are the decorated function's (through other
    decorators), or those of the function around the ``with`` block: not reliable's own module."""

    @reliable.observed(name)
    @reliable.retry(attempts=1)
    def sync_orders() -> int:
        return 1

    @reliable.observed(name)
    async def fetch() -> int:
        return 2

    async def main() -> None:
        async with reliable.observed(name):
            await fetch()

    sync_orders()
    with reliable.observed(name):
        line = sys._getframe().f_lineno
    asyncio.run(main())

    decorated, block, awaited, async_block = finished(records, name)
    assert (__file__, inspect.unwrap(sync_orders).__code__.co_firstlineno, "sync_orders") == (
        decorated.pathname,
        decorated.lineno,
        decorated.funcName,
    )
    assert (__file__, "test_log_record_names_the_users_code") == (block.pathname, block.funcName)
    assert line - 1 <= block.lineno <= line
    assert [(__file__, "fetch"), (__file__, "main")] == [(r.pathname, r.funcName) for r in (awaited, async_block)]


def test_span_attributes_are_the_operation_and_yours(otel: Otel, name: str) -> None:
    """The span is named after the operation and carries the attributes passed to observed and the outcome;
    nothing else (each attribute costs the SDK microseconds)."""

    @reliable.observed(name, attributes={"team": "data", "batch": 3})
    def job() -> None:
        pass

    job()

    (span,) = otel.spans(name)
    assert {"team": "data", "batch": 3, "reliable.outcome": "ok"} == dict(span.attributes)


def test_bare_decorator_uses_the_qualified_name(otel: Otel) -> None:
    """`@observed` without arguments names the operation after the function."""

    @reliable.observed
    def bare_job() -> int:
        return 1

    result = bare_job()

    assert 1 == result
    assert 1 == len(otel.spans(f"{__name__}.test_bare_decorator_uses_the_qualified_name.<locals>.bare_job"))


# -- error ---------------------------------------------------------------------------------------------


def test_error_sets_status_error_type_and_exception_event(mode: Mode, otel: Otel, records: Records, name: str) -> None:
    """A call that raises: the same exception propagates; span ERROR with error.type and an exception event;
    calls{error}; one ERROR record with the error and its classification."""
    boom = ValueError("bad row 42")

    def body() -> int:
        raise boom

    with pytest.raises(ValueError) as raised:
        mode.run(reliable.observed(name, alert=False), body)

    assert boom is raised.value
    (span,) = otel.spans(name)
    assert (StatusCode.ERROR, "ValueError: bad row 42") == (span.status.status_code, span.status.description)
    assert ("ValueError", "error") == (span.attributes["error.type"], span.attributes["reliable.outcome"])
    assert ["exception"] == [e.name for e in span.events]
    assert "bad row 42" == span.events[0].attributes["exception.message"]
    (calls,) = otel.points("reliable.calls", name)
    assert ("error", 1) == (calls.attributes["reliable.outcome"], calls.value)
    (duration,) = otel.points("reliable.duration", name)
    assert "ValueError" == duration.attributes["error.type"]
    (record,) = finished(records, name)
    fields = record.reliable  # type: ignore[attr-defined]
    assert (logging.ERROR, "ValueError", "ValueError: bad row 42", "permanent") == (
        record.levelno,
        fields["error.type"],
        fields["error.message"],
        fields["reliable.error.kind"],
    )
    assert boom is record.exc_info[1]  # type: ignore[index]


def test_error_type_of_a_library_exception_is_qualified(otel: Otel, name: str) -> None:
    """error.type is the exception's module-qualified class name when it is not a builtin."""

    class QuotaError(Exception):
        pass

    with pytest.raises(QuotaError):
        reliable.observed(name, alert=False)(lambda: (_ for _ in ()).throw(QuotaError("x")))()

    (span,) = otel.spans(name)
    assert (
        f"{__name__}.test_error_type_of_a_library_exception_is_qualified.<locals>.QuotaError"
        == span.attributes["error.type"]
    )


def test_system_exit_zero_is_ok(otel: Otel, name: str) -> None:
    """sys.exit(0) inside an observed main() is a success, not an error."""

    @reliable.observed(name)
    def main() -> None:
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        main()

    (span,) = otel.spans(name)
    assert "ok" == span.attributes["reliable.outcome"]


def test_retry_that_recovers_inside_is_ok(otel: Otel, clock: FakeClock, records: Records, name: str) -> None:
    """Errors an inner reliable.retry handled do not make the call an error; the retries are counted."""
    failures = [ConnectionError("reset"), ConnectionError("reset")]

    @reliable.observed(name)
    @reliable.retry(attempts=5)
    def fetch() -> str:
        if failures:
            raise failures.pop()
        return "rows"

    result = fetch()

    assert "rows" == result
    (span,) = otel.spans(name)
    assert "ok" == span.attributes["reliable.outcome"]
    assert ["reliable.retry.attempt", "reliable.retry.attempt"] == [e.name for e in span.events]
    (record,) = finished(records, name)
    assert 2 == record.reliable["reliable.retries"]  # type: ignore[attr-defined]


# -- degraded --------------------------------------------------------------------------------------------


def test_expect_false_is_degraded(mode: Mode, otel: Otel, records: Records, name: str) -> None:
    """A result that fails expect= makes the call degraded: WARNING record, span event, the result still returned."""
    result = mode.run(reliable.observed(name, expect=lambda rows: rows > 0, alert=False), lambda: 0)

    assert 0 == result
    (span,) = otel.spans(name)
    assert ("degraded", StatusCode.ERROR) == (span.attributes["reliable.outcome"], span.status.status_code)
    assert ["reliable.observed.degraded"] == [e.name for e in span.events]
    (calls,) = otel.points("reliable.calls", name)
    assert "degraded" == calls.attributes["reliable.outcome"]
    (record,) = finished(records, name)
    assert logging.WARNING == record.levelno
    assert "expect= is false for the result 0" == record.reliable["reliable.reason"]  # type: ignore[attr-defined]


def test_expect_that_raises_is_degraded_and_reported(mode: Mode, otel: Otel, records: Records, name: str) -> None:
    """An expect= predicate that raises never breaks the call: the call is degraded and the error is reported."""

    def expect(rows: Any) -> bool:
        return bool(rows["count"])

    result = mode.run(reliable.observed(name, expect=expect, alert=False), lambda: [1, 2])

    assert [1, 2] == result
    (record,) = finished(records, name)
    reason = record.reliable["reliable.reason"]  # type: ignore[attr-defined]
    assert ("degraded", True) == (record.reliable["reliable.outcome"], reason.startswith("expect= raised TypeError"))  # type: ignore[attr-defined]


def test_expect_true_is_ok(mode: Mode, otel: Otel, name: str) -> None:
    """A result that passes expect= is ok."""
    mode.run(reliable.observed(name, expect=lambda rows: rows > 0), lambda: 3)

    (span,) = otel.spans(name)
    assert "ok" == span.attributes["reliable.outcome"]


def test_run_degrade_marks_the_block_degraded(otel: Otel, name: str) -> None:
    """Inside `with observed(...) as run`, run.degrade(reason) makes the call degraded without expect=."""
    with reliable.observed(name, alert=False) as run:
        run.degrade("upstream returned an empty page")

    (span,) = otel.spans(name)
    assert ("degraded", "degraded: upstream returned an empty page") == (
        span.attributes["reliable.outcome"],
        span.status.description,
    )
    assert "degraded" == run.outcome


# -- skipped ---------------------------------------------------------------------------------------------


def test_single_instance_skip_inside_is_skipped(mode: Mode, otel: Otel, records: Records, name: str) -> None:
    """The event reliable.single_instance.skipped inside the call makes the outcome skipped, at INFO."""

    def body() -> None:
        _telemetry.emit("single_instance", "skipped", "held elsewhere", attributes={"reliable.operation": name})

    mode.run(reliable.observed(name), body)

    (span,) = otel.spans(name)
    assert "skipped" == span.attributes["reliable.outcome"]
    assert ["reliable.single_instance.skipped"] == [e.name for e in span.events]
    (calls,) = otel.points("reliable.calls", name)
    assert "skipped" == calls.attributes["reliable.outcome"]
    (record,) = finished(records, name)
    assert ("skipped", logging.INFO) == (record.reliable["reliable.outcome"], record.levelno)  # type: ignore[attr-defined]


def test_real_single_instance_skip(otel: Otel, name: str, tmp_path: Any) -> None:
    """With the real reliable.single_instance held by another thread, the observed call is skipped."""
    import threading

    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with reliable.single_instance(name, lock_dir=tmp_path):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:

        @reliable.observed(name)
        @reliable.single_instance(name, lock_dir=tmp_path, on_conflict="skip")
        def job() -> int:
            return 1

        result = job()
    finally:
        release.set()
        thread.join(5)

    assert reliable.SKIPPED is result
    (span,) = otel.spans(name)
    assert "skipped" == span.attributes["reliable.outcome"]


def test_inner_observed_claims_the_skip(otel: Otel, name: str) -> None:
    """Nested observed calls: a skip inside the inner one makes only the inner call skipped."""
    inner = reliable.observed(name + "-inner")

    @reliable.observed(name)
    def outer() -> None:
        with inner:
            _telemetry.emit("single_instance", "skipped", "held", attributes={"reliable.operation": name})

    outer()

    assert ["skipped"] == [s.attributes["reliable.outcome"] for s in otel.spans(name + "-inner")]
    assert ["ok"] == [s.attributes["reliable.outcome"] for s in otel.spans(name)]
    (inner_span,) = otel.spans(name + "-inner")
    assert otel.spans(name)[0].context.span_id == inner_span.parent.span_id


# -- events of other primitives, cost, and robustness -------------------------------------------------------


def test_inner_events_land_on_the_observed_span(otel: Otel, name: str) -> None:
    """Events the other primitives emit inside the call become span events of the observed span."""
    with reliable.observed(name):
        _telemetry.emit("idempotent", "replay", "replayed", attributes={"reliable.operation": "k"})

    (span,) = otel.spans(name)
    assert [("reliable.idempotent.replay", "k")] == [(e.name, e.attributes["reliable.operation"]) for e in span.events]


def test_no_span_without_a_real_tracer_provider(name: str) -> None:
    """A no-op tracer provider means no span is started at all (the call skips the API's no-op span)."""
    with _otel.use_providers(tracer_provider=NoOpTracerProvider()):
        tracer = _otel.tracer()
        with reliable.observed(name) as run:
            pass

    assert (None, None, "ok") == (tracer, run._span, run.outcome)


def test_no_log_record_is_built_when_nobody_listens(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the logger disabled and no listener, the end-of-call record is not even built."""
    built: list[str] = []
    monkeypatch.setattr(reliable.ObservedRun, "_report", lambda self, *a: built.append(self.name))
    logging.getLogger("reliable.observed").setLevel(logging.ERROR)
    try:
        reliable.observed(name)(lambda: 1)()
    finally:
        logging.getLogger("reliable.observed").setLevel(logging.NOTSET)

    assert [] == built


def test_telemetry_failure_never_breaks_the_call(otel: Otel, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """If recording the metrics raises, the call still returns its result (and its exception stays the caller's)."""

    def broken(*args: Any) -> None:
        raise RuntimeError("exporter down")

    monkeypatch.setattr("reliable._observed_run._record_call", broken)

    result = reliable.observed(name)(lambda: 5)()
    with pytest.raises(KeyError):
        reliable.observed(name, alert=False)(lambda: {}["missing"])()

    assert 5 == result


def test_durations_queue_until_a_reader_collects(otel: Otel, clock: FakeClock, name: str) -> None:
    """Durations are recorded into the histogram when the reader collects, all of them, in one collection."""
    job = reliable.observed(name)(lambda: clock.advance(1))
    for _ in range(3):
        job()

    (point,) = otel.points("reliable.duration", name)

    assert (3, 3.0) == (point.count, point.sum)


def test_calls_are_counted_in_process(name: str) -> None:
    """Without any SDK the calls are still counted in-process (exported once a meter provider appears)."""
    job = reliable.observed(name)(lambda: None)
    job()
    job()

    assert 2 == _metrics.call_counts()[(name, "ok")]


def test_generator_function_is_refused(name: str) -> None:
    """Decorating a generator function raises ConfigError: it would time only the generator's creation."""

    def rows() -> Iterator[int]:
        yield 1

    with pytest.raises(reliable.ConfigError, match="generator function"):
        reliable.observed(name)(rows)


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"expect": 3}, "expect"),
        ({"max_age": "soon"}, "max_age"),
        ({"max_runtime": 0}, "max_runtime"),
        ({"failing_after": 0}, "failing_after"),
        ({"recover_after": True}, "recover_after"),
        ({"heartbeat": False, "max_age": 60}, "heartbeat"),
        ({"alert": "slack"}, "alert"),
        ({"store": 42}, "store"),
        ({"attributes": ["team"]}, "attributes"),
    ],
)
def test_bad_arguments_raise_config_error(options: dict[str, Any], parameter: str) -> None:
    """Each bad argument raises ConfigError naming the parameter, when observed() is called."""
    with pytest.raises(reliable.ConfigError) as raised:
        reliable.observed("job", **options)

    assert parameter == raised.value.parameter  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["", "  ", "x" * 201, 42])
def test_bad_name_raises_config_error(bad: Any) -> None:
    """An empty, blank, too long or non-str name raises ConfigError."""
    with pytest.raises(reliable.ConfigError) as raised:
        reliable.observed(bad)

    assert "name" == raised.value.parameter  # type: ignore[attr-defined]


def test_calls_counted_across_threads_that_ended(name: str) -> None:
    """Calls counted in many short-lived threads all add up, after the threads have ended."""
    import threading

    job = reliable.observed(name)(lambda: None)

    def worker() -> None:
        for _ in range(5):
            job()

    for _ in range(40):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()

    assert 200 == _metrics.call_counts()[(name, "ok")]


def test_long_duration_queue_is_recorded_in_the_background(
    otel: Otel, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_PENDING queued durations, a background thread records them; the caller only appends."""
    import time

    monkeypatch.setattr(_metrics, "MAX_PENDING", 5)
    job = reliable.observed(name)(lambda: None)
    for _ in range(12):
        job()
    pending = _metrics._instruments_for(otel.meter_provider).pending
    for _ in range(200):
        if len(pending) < 5:
            break
        time.sleep(0.01)
    left = len(pending)

    (point,) = otel.points("reliable.duration", name)
    assert left < 5
    assert 12 == point.count
