"""Per-call overhead of reliable.observed, without an OpenTelemetry SDK and with one, in one process.

Run: ``pytest benchmarks/test_bench_observed.py --benchmark-only -p no:cacheprovider``

How both cases are measured honestly in one run: the API's global providers can be set
only once per process and never unset, so this file never sets them. "No SDK" is the
state of the process as it starts. The SDK cases make their own ``TracerProvider`` (with
a ``SimpleSpanProcessor`` into an ``InMemorySpanExporter``) and ``MeterProvider`` (with an
``InMemoryMetricReader``): the hand-written block gets a tracer from that provider
directly, and `reliable` gets the same providers through
``reliable._internal._otel.use_providers`` (what the ``reliable_telemetry`` fixture
uses), entered only around the SDK benchmarks.

Kept steady, so that a case does not pay for the ones before it. Measured: with an
exporter that keeps every span, the hand-written block went from 16 µs to 25 µs per call
over 40 000 spans, because each full GC collection walks every span kept (25 ms, then
50, 75, 100 ms); and in the meter case the background flusher woke every 10 000 calls to
record their durations (~7 µs each) in some rounds and not others. Which case met those
pauses decided the ratios: 1.3x in one run, 1.9x in the next. Now:

- the span exporter keeps at most `KEEP` spans (it clears itself, inside the timed call,
  for every case alike);
- durations queued for the histogram are handled every `KEEP` calls the same way: dropped
  in the "queued" case (their recording is its own group), recorded by a collection in the
  "recording included" case, so the background flusher never wakes in a timed round;
- the logging case detaches ``reliable.observed`` from pytest's capturing handlers (which
  format and keep every record), so its records reach only the NullHandler the label names
  (before, its 20-40 µs per call were mostly pytest formatting the record).

Groups and their baselines:

- observed, no SDK: a bare call (target: at most 2 µs above it). The API's no-op span
  (``start_as_current_span`` without an SDK) is shown for scale.
- observed, SDK + in-memory exporter: a hand-written ``start_as_current_span`` block on the
  same SDK provider (target: at most 1.3x). Shown with the tracer provider only, and with
  the meter provider as well: on the caller's path (durations queued; recorded into the
  histogram when the reader collects, its own group below), and with that recording
  included, next to the hand-written block plus its own ``Histogram.record``.
- observed with heartbeats on a MemoryStore and with INFO logging to a NullHandler, for
  the cost of those options.

The ``reliable.observed`` logger stays at WARNING (nothing configured) except in the
logging case, so ok calls create no log record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import reliable
from reliable._internal import _metrics, _otel
from reliable.stores.memory import MemoryStore

NO_SDK = "observed: no SDK (vs bare call)"
SDK = "observed: SDK + in-memory exporter (vs hand-written span block)"
FLUSH = "observed: recording queued durations into the SDK histogram (per call, at collection)"
OPTIONS = "observed: options (no SDK)"


def label(benchmark: Any, group: str, name: str, *, baseline: bool = False) -> None:
    benchmark.group = group
    benchmark.extra_info["label"] = name
    if baseline:
        benchmark.extra_info["baseline"] = True


def work(x: int) -> int:
    return x


KEEP = 1000
"""Spans kept by the exporter, and calls between two rounds of housekeeping of queued durations."""


class SteadyExporter(InMemorySpanExporter):
    """An in-memory exporter that keeps at most `KEEP` spans and then runs `housekeeping`."""

    def __init__(self) -> None:
        super().__init__()
        self.exported = 0
        self.housekeeping: Callable[[], object] = lambda: None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        self.exported += len(spans)
        if self.exported >= KEEP:
            self.exported = 0
            self.clear()
            self.housekeeping()
        return result


class Sdk:
    def __init__(self) -> None:
        self.exporter = SteadyExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        self.histogram = self.meter_provider.get_meter("bench").create_histogram("bench.duration", unit="s")

    def drop_queued(self) -> None:
        _metrics._instruments_for(self.meter_provider).pending.clear()

    def collect(self) -> None:
        self.reader.get_metrics_data()


@pytest.fixture(scope="module")
def sdk() -> Sdk:
    return Sdk()


@pytest.fixture(autouse=True)
def _no_global_sdk() -> None:
    """The no-SDK numbers are only meaningful if nothing set the API's global providers."""
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)


# -- no SDK ----------------------------------------------------------------------------------------------------


def noop_span_block(x: int) -> int:
    with trace.get_tracer("bench").start_as_current_span("work"):
        return work(x)


NO_SDK_CASES: dict[str, Callable[[int], int]] = {
    "bare call": work,
    "reliable.observed (no SDK)": reliable.observed("bench-no-sdk")(work),
    "hand-written start_as_current_span, API only (no-op span)": noop_span_block,
}


@pytest.mark.parametrize("name", list(NO_SDK_CASES))
def test_no_sdk(benchmark: Any, name: str) -> None:
    fn = NO_SDK_CASES[name]
    label(benchmark, NO_SDK, name, baseline=name == "bare call")
    assert _otel.tracer() is None

    assert 7 == benchmark(fn, 7)


# -- SDK -------------------------------------------------------------------------------------------------------


def hand_written(tracer: trace.Tracer) -> Callable[[int], int]:
    def block(x: int) -> int:
        with tracer.start_as_current_span("work"):
            return work(x)

    return block


def hand_written_with_histogram(tracer: trace.Tracer, histogram: Any) -> Callable[[int], int]:
    def block(x: int) -> int:
        with tracer.start_as_current_span("work"):
            t0 = time.perf_counter()
            result = work(x)
            histogram.record(time.perf_counter() - t0, {"operation": "work", "outcome": "ok"})
            return result

    return block


SDK_CASES = {
    "hand-written": "hand-written start_as_current_span block",
    "tracer": "observed, tracer only",
    "meter": "observed, tracer + meter (duration queued)",
    "meter+record": "observed, tracer + meter, queued duration recorded",
    "hand+record": "hand-written block + its own Histogram.record",
}


@pytest.mark.parametrize("case", list(SDK_CASES))
def test_sdk(benchmark: Any, sdk: Sdk, case: str) -> None:
    label(benchmark, SDK, SDK_CASES[case], baseline=case == "hand-written")
    tracer = sdk.tracer_provider.get_tracer("bench")
    providers: dict[str, Any] = {}
    sdk.exporter.housekeeping = sdk.collect if case.endswith("record") else sdk.drop_queued
    if case == "hand-written":
        fn = hand_written(tracer)
    elif case == "hand+record":
        fn = hand_written_with_histogram(tracer, sdk.histogram)
    else:
        fn = reliable.observed("bench-sdk")(work)
        providers["tracer_provider"] = sdk.tracer_provider
        if case.startswith("meter"):
            providers["meter_provider"] = sdk.meter_provider

    with _otel.use_providers(**providers):
        assert case.startswith("hand") == (_otel.tracer() is None)
        result = benchmark(fn, 7)
        sdk.collect()  # record what was queued, so the next case starts empty
    sdk.exporter.clear()
    sdk.exporter.housekeeping = lambda: None

    assert 7 == result


def test_flush_queued_durations(benchmark: Any, sdk: Sdk) -> None:
    """What a reader's collection pays per queued duration (Histogram.record), off the caller's path."""
    label(benchmark, FLUSH, "Histogram.record of one queued duration")
    with _otel.use_providers(meter_provider=sdk.meter_provider):
        instruments = _metrics._instruments_for(sdk.meter_provider)

        def one() -> None:
            instruments.pending.append((0.001, "bench-flush", "ok", ""))
            _metrics._flush(instruments)

        benchmark(one)


# -- options ---------------------------------------------------------------------------------------------------


@contextmanager
def info_to_a_null_handler() -> Iterator[None]:
    """``reliable.observed`` at INFO into a NullHandler only.

    Entered in the test body: pytest (9.2) adds its capturing handlers, which format and keep
    every record, to the root logger and to every non-propagating logger when the call phase
    starts, so a fixture could not keep them out.
    """
    logger = logging.getLogger("reliable.observed")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    logger.handlers[:] = [logging.NullHandler()]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:] = saved[2]
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def test_options_bare(benchmark: Any) -> None:
    label(benchmark, OPTIONS, "bare call", baseline=True)
    assert 7 == benchmark(work, 7)


def test_options_info_log(benchmark: Any) -> None:
    label(benchmark, OPTIONS, "observed, INFO record per call to a NullHandler")
    with info_to_a_null_handler():
        assert 7 == benchmark(reliable.observed("bench-log")(work), 7)


def test_options_heartbeat(benchmark: Any) -> None:
    label(benchmark, OPTIONS, "observed(heartbeat=True), MemoryStore")
    assert 7 == benchmark(reliable.observed("bench-hb", heartbeat=True, store=MemoryStore(), alert=False)(work), 7)
