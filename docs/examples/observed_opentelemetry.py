"""OpenTelemetry: with an SDK configured, every observed call is a span, and the calls and durations are metrics.

Configure the SDK the way you always do (here: spans and metrics kept in memory and
printed); `reliable` finds it by itself. Without an SDK, `observed` skips spans entirely.
"""

from __future__ import annotations

import contextlib

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import reliable

exporter = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(tracer_provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


@reliable.observed("fetch-page", expect=lambda rows: len(rows) > 0, alert=False)
def fetch_page(page: int) -> list[int]:
    if page == 3:
        raise LookupError(f"page {page} is gone")
    return [] if page == 2 else [1, 2, 3]


def main() -> None:
    for page in (1, 2, 3):
        with contextlib.suppress(LookupError):
            fetch_page(page)

    for span in exporter.get_finished_spans():
        attributes = span.attributes or {}
        print(span.name, attributes["reliable.outcome"], span.status.status_code.name, attributes.get("error.type", ""))

    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name in ("reliable.calls", "reliable.duration"):
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = getattr(point, "count", None)
                        print(metric.name, dict(point.attributes or {}), value)


if __name__ == "__main__":
    main()
