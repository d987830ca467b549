"""Helpers of the observed/alerts/health tests: the four forms of `observed`, in-memory OpenTelemetry, fixtures."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import reliable
from reliable._internal import _otel
from reliable.testing import FakeClock, installed


class Otel:
    """The in-memory exporters of one test."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)

    def spans(self, name: str) -> list[Any]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def points(self, metric: str, operation: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        found += [p for p in m.data.data_points if p.attributes.get("reliable.operation") == operation]
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    """SDK providers with in-memory exporters, given to reliable alone (the API's globals stay unset)."""
    made = Otel()
    with _otel.use_providers(tracer_provider=made.tracer_provider, meter_provider=made.meter_provider):
        yield made


@pytest.fixture
def name() -> str:
    """A fresh operation name, so process-wide counters and shared stores never mix tests."""
    return f"op-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with installed(FakeClock()) as fake:
        yield fake


class Records:
    """The log records of the test's call phase (caplog keeps one list per phase)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __iter__(self) -> Iterator[logging.LogRecord]:
        return iter(self.caplog.records)


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Records:
    caplog.set_level(logging.DEBUG, logger="reliable")
    return Records(caplog)


class Mode:
    """Run a body under an `Observed` as a sync or async decorator, or a sync or async context manager."""

    def __init__(self, form: str) -> None:
        self.form = form

    def __repr__(self) -> str:
        return self.form

    def run(self, obs: reliable.Observed, body: Callable[[], Any]) -> Any:
        if self.form == "decorator":

            def job() -> Any:
                return body()

            return obs(job)()
        if self.form == "async decorator":

            async def ajob() -> Any:
                await asyncio.sleep(0)
                return body()

            return asyncio.run(obs(ajob)())
        if self.form == "with":
            with obs as run:
                return run.set_result(body())

        async def main() -> Any:
            async with obs as run:
                await asyncio.sleep(0)
                return run.set_result(body())

        return asyncio.run(main())


@pytest.fixture(params=["decorator", "async decorator", "with", "async with"])
def mode(request: pytest.FixtureRequest) -> Mode:
    return Mode(request.param)
