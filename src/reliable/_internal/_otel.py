"""Which OpenTelemetry providers are real, found in nanoseconds, and a scoped override for tests.

The API's ``trace.get_tracer_provider()`` costs about 1.4 µs on these machines (it looks
up an environment variable on every call while no provider is set), more than the whole
budget of `reliable.observed` without an SDK. So the hot path reads the module globals
the API's ``set_tracer_provider`` / ``set_meter_provider`` write (``_TRACER_PROVIDER`` and
``_METER_PROVIDER``), and falls back to the public functions if a future API renames them.
A provider set through the ``OTEL_PYTHON_*_PROVIDER`` environment variables is loaded
once, the first time it is needed, by calling the public getter.

`use_providers` installs a tracer and/or meter provider for `reliable` only, without
touching the API's set-once globals: the test suite and the ``reliable_telemetry``
fixture use it to collect spans and metrics with the SDK's in-memory exporters, as many
times per process as they like.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.metrics._internal import _ProxyMeterProvider

__all__ = ["meter_provider", "tracer", "use_providers"]

_HAS_TRACE_GLOBAL = hasattr(trace, "_TRACER_PROVIDER")
_HAS_METER_GLOBAL = hasattr(_metrics_api, "_METER_PROVIDER")
_ENV_TRACER = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_ENV_METER = "OTEL_PYTHON_METER_PROVIDER" in os.environ
_NOOP_TRACER_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_NOOP_METER_PROVIDERS = (_ProxyMeterProvider, metrics.NoOpMeterProvider)

_lock = threading.Lock()
_override_tracer_provider: Any = None
_override_meter_provider: Any = None
_tracer_cache: tuple[Any, trace.Tracer | None] = (None, None)


_FAST_TRACE = _HAS_TRACE_GLOBAL and not _ENV_TRACER
_FAST_METER = _HAS_METER_GLOBAL and not _ENV_METER


def _global_tracer_provider() -> Any:
    provider = trace.get_tracer_provider()
    return None if isinstance(provider, _NOOP_TRACER_PROVIDERS) else provider


def tracer() -> trace.Tracer | None:
    """The tracer of the real tracer provider in use, or None when no SDK is configured (a no-op span is skipped)."""
    provider = _override_tracer_provider or (trace._TRACER_PROVIDER if _FAST_TRACE else _global_tracer_provider())
    if provider is None:
        return None
    cached = _tracer_cache
    if cached[0] is provider:
        return cached[1]
    return _make_tracer(provider)


def _make_tracer(provider: Any) -> trace.Tracer | None:
    global _tracer_cache
    made: trace.Tracer | None = None
    if not isinstance(provider, _NOOP_TRACER_PROVIDERS):
        made = provider.get_tracer("reliable", _version())
    _tracer_cache = (provider, made)
    return made


def _global_meter_provider() -> Any:
    provider = metrics.get_meter_provider()
    return None if isinstance(provider, _NOOP_METER_PROVIDERS) else provider


def meter_provider() -> Any:
    """The meter provider `reliable`'s instruments should report to right now, or None when no SDK is set.

    None means measurements would be dropped, so the caller skips them.
    """
    provider = _override_meter_provider or (_metrics_api._METER_PROVIDER if _FAST_METER else _global_meter_provider())
    if provider is None or isinstance(provider, metrics.NoOpMeterProvider):
        return None
    return provider


def override_meter_provider() -> Any:
    """The meter provider installed by `use_providers`, or None."""
    return _override_meter_provider


@contextmanager
def use_providers(*, tracer_provider: Any = None, meter_provider: Any = None) -> Iterator[None]:
    """Make `reliable` report to these providers inside the block, ignoring the global ones.

    Process-wide (like the library clock), not per thread: the lock renewer thread of
    `reliable.single_instance` reports to the same provider as the code it guards.
    Each argument left as None keeps the current choice.
    """
    global _override_tracer_provider, _override_meter_provider
    with _lock:
        previous = (_override_tracer_provider, _override_meter_provider)
        if tracer_provider is not None:
            _override_tracer_provider = tracer_provider
        if meter_provider is not None:
            _override_meter_provider = meter_provider
    try:
        yield
    finally:
        with _lock:
            _override_tracer_provider, _override_meter_provider = previous


_VERSION: list[str] = []


def _version() -> str:
    if not _VERSION:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _VERSION.append(version("reliable"))
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
            _VERSION.append("")
    return _VERSION[0]
