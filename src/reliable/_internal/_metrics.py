"""`reliable`'s metrics, kept in-process and exported through observable instruments.

An SDK ``Counter.add`` costs about 10 µs and ``Histogram.record`` about 9 µs per call on
these machines, so the hot path does neither:

- ``reliable.events`` (event name, operation) and ``reliable.calls`` (operation, outcome)
  are plain in-process counts, reported by observable counters when a reader collects;
- ``reliable.duration`` is a real histogram (seconds), but a call only appends its
  duration to a queue; the queue is recorded into the histogram when a reader collects
  (inside the ``reliable.calls`` callback, so the values land in that same collection),
  or by a background thread once it holds `MAX_PENDING` values (at most `MAX_QUEUED` are
  kept: beyond that, the oldest are dropped and counted). With a periodic reader the cost
  of recording therefore moves to the exporter's thread. Durations are queued only while
  a real meter provider is set, so without an SDK nothing is kept. (Recorded outside the
  call, the values carry no trace-based exemplars.)

Instruments are created on the API's global proxy meter on first use (the proxy binds
them to an SDK provider set later), and once per provider installed with
`reliable._internal._otel.use_providers`.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import _internal as _metrics_api

from . import _otel

__all__ = [
    "MAX_PENDING",
    "call_counts",
    "count_event",
    "ensure_registered",
    "event_counts",
    "queue_duration",
    "record_call",
    "thread_calls",
]

MAX_PENDING = 10_000
"""Queued durations after which a background thread records them instead of waiting for a collection."""
MAX_QUEUED = 100_000
"""Queued durations kept at most; older ones are dropped (and counted in `dropped`) if nobody keeps up."""

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Histogram bucket boundaries advised to the SDK, in seconds: from an API call to an hour-long job."""

_lock = threading.Lock()
_Table = dict[tuple[str, str], int]
_events: list[tuple[weakref.ref[threading.Thread], _Table]] = []
"""One table of event counts per live thread that counted an event (written only by that thread)."""
_calls: list[tuple[weakref.ref[threading.Thread], _Table]] = []
"""One table of call counts per live thread that counted a call (written only by that thread)."""
_retired_events: _Table = {}
_retired: _Table = {}
"""The counts of threads that have ended."""
_per_thread = threading.local()


@dataclass(eq=False)
class _Instruments:
    duration: Any = None
    pending: deque[tuple[float, str, str, str]] = field(default_factory=lambda: deque(maxlen=MAX_QUEUED))
    keep: list[Any] = field(default_factory=list)


_global: list[_Instruments] = []
_SLOW_METER = not _otel._FAST_METER
_by_provider: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()


def count_event(name: str, operation: str) -> None:
    """Count one event of a primitive."""
    key = (name, operation)
    try:
        counts = _per_thread.events
    except AttributeError:
        counts = _per_thread.events = _register(_events, _retired_events)
    counts[key] = counts.get(key, 0) + 1  # only this thread writes this dict: no lock
    if not _global:
        _ensure_global()


def record_call(operation: str, outcome: str, duration: float, error_type: str) -> None:
    """Count one call of an observed operation and queue its duration for the histogram."""
    key = (operation, outcome)
    try:
        counts = _per_thread.calls
    except AttributeError:
        counts = _thread_counts()
    counts[key] = counts.get(key, 0) + 1  # only this thread writes this dict: no lock
    if _otel._override_meter_provider is not None or _metrics_api._METER_PROVIDER is not None or _SLOW_METER:
        queue_duration(operation, outcome, duration, error_type)


def thread_calls() -> dict[tuple[str, str], int]:
    """This thread's table of call counts, to increment in place (only this thread writes it)."""
    try:
        counts: dict[tuple[str, str], int] = _per_thread.calls
    except AttributeError:
        counts = _thread_counts()
    return counts


def sdk_meter_possible() -> bool:
    """Cheap: whether a meter provider may be set, so that durations are worth queueing."""
    return _otel._override_meter_provider is not None or _metrics_api._METER_PROVIDER is not None or _SLOW_METER


_last: tuple[Any, Any, _Instruments | None] = (None, None, None)
"""The (provider, override) `queue_duration` saw last and their instruments: two identity tests, no weak-dict lookup."""


def queue_duration(operation: str, outcome: str, duration: float, error_type: str) -> None:
    """Queue one duration for the ``reliable.duration`` histogram, if a real meter provider is set."""
    global _last
    provider = _otel.meter_provider()
    if provider is None:
        return
    last_provider, last_override, instruments = _last
    override = _otel._override_meter_provider
    if instruments is None or last_provider is not provider or last_override is not override:
        instruments = _instruments_for(provider)
        _last = (provider, override, instruments)
    pending = instruments.pending
    if len(pending) >= MAX_PENDING:
        _overflow(instruments)
    pending.append((duration, operation, outcome, error_type))


def event_counts() -> _Table:
    """A snapshot of the event counts, keyed by ``(event name, operation)``, summed over every thread."""
    return _summed(_events, _retired_events)


def call_counts() -> _Table:
    """A snapshot of the call counts, keyed by ``(operation, outcome)``, summed over every thread."""
    return _summed(_calls, _retired)


def _summed(tables: list[tuple[weakref.ref[threading.Thread], _Table]], retired: _Table) -> _Table:
    with _lock:
        live = [table for _, table in tables]
        total = dict(retired)
    for table in live:
        for key, count in table.copy().items():  # dict.copy is atomic under the GIL
            total[key] = total.get(key, 0) + count
    return total


def _thread_counts() -> _Table:
    """This thread's call counts, registered so that they outlive the thread."""
    counts = _per_thread.calls = _register(_calls, _retired)
    return counts


def _register(tables: list[tuple[weakref.ref[threading.Thread], _Table]], retired: _Table) -> _Table:
    """A new table of counts for this thread, in *tables*, so that its counts outlive the thread.

    Tables of threads that have ended are folded into *retired* when a new thread registers,
    so a server starting a thread per request keeps a bounded number of tables.
    """
    counts: _Table = {}
    with _lock:
        if len(tables) >= 32:
            alive = []
            for ref, table in tables:
                thread = ref()
                if thread is not None and thread.is_alive():
                    alive.append((ref, table))
                else:
                    for key, count in table.items():
                        retired[key] = retired.get(key, 0) + count
            tables[:] = alive
        tables.append((weakref.ref(threading.current_thread()), counts))
    return counts


def observe_events(options: Any = None) -> Iterator[metrics.Observation]:
    for (name, operation), count in event_counts().items():
        yield metrics.Observation(count, {"event": name, "reliable.operation": operation})


def _observe_calls(instruments: _Instruments) -> Callable[[Any], Iterator[metrics.Observation]]:
    def observe(options: Any) -> Iterator[metrics.Observation]:
        _flush(instruments)
        for (operation, outcome), count in call_counts().items():
            yield metrics.Observation(count, {"reliable.operation": operation, "reliable.outcome": outcome})

    return observe


_flusher: list[threading.Thread] = []
_wanted: list[_Instruments] = []
_wake = threading.Event()
dropped = [0]
"""Durations dropped because the queue was full (more than `MAX_QUEUED`)."""


def _overflow(instruments: _Instruments) -> None:
    """The queue is long: count what a full queue is about to drop, and wake the flusher thread."""
    if len(instruments.pending) >= MAX_QUEUED:
        dropped[0] += 1
    if instruments not in _wanted:
        _wanted.append(instruments)
    if not _flusher or not _flusher[0].is_alive():
        with _lock:
            if not _flusher or not _flusher[0].is_alive():
                thread = threading.Thread(target=_flush_forever, name="reliable-metrics", daemon=True)
                _flusher[:] = [thread]
                thread.start()
    _wake.set()


def _flush_forever() -> None:
    while True:
        _wake.wait()
        _wake.clear()
        for instruments in list(_wanted):
            with contextlib.suppress(Exception):  # the SDK failed to record: telemetry never raises
                _flush(instruments)


def _flush(instruments: _Instruments) -> None:
    """Record the queued durations (deque pops are atomic, so concurrent appends are never lost)."""
    pending, histogram = instruments.pending, instruments.duration
    while True:
        try:
            duration, operation, outcome, error_type = pending.popleft()
        except IndexError:
            return
        attributes = {"reliable.operation": operation, "reliable.outcome": outcome}
        if error_type:
            attributes["error.type"] = error_type
        histogram.record(duration, attributes)


def _instruments_for(provider: Any) -> _Instruments:
    if provider is not _otel.override_meter_provider():
        return _global[0] if _global else _ensure_global()
    made = _by_provider.get(provider)
    if made is None:
        with _lock:
            made = _by_provider.get(provider)
            if made is None:
                made = _by_provider[provider] = _make(provider.get_meter("reliable", _otel._version()))
    return made


def ensure_registered() -> None:
    """Register the instruments on the API's global proxy meter (once), so an SDK set later exports them."""
    if not _global:
        _ensure_global()


def _ensure_global() -> _Instruments:
    with _lock:
        if not _global:
            _global.append(_make(metrics.get_meter("reliable", _otel._version())))
    return _global[0]


def _make(meter: metrics.Meter) -> _Instruments:
    made = _Instruments()
    made.keep.append(
        meter.create_observable_counter(
            "reliable.events",
            callbacks=[observe_events],
            unit="{event}",
            description="Events of reliable's primitives, by event name and operation",
        )
    )
    made.keep.append(
        meter.create_observable_counter(
            "reliable.calls",
            callbacks=[_observe_calls(made)],
            unit="{call}",
            description="Calls of observed operations, by operation and outcome",
        )
    )
    try:
        made.duration = meter.create_histogram(
            "reliable.duration",
            unit="s",
            description="Duration of observed operations, by operation and outcome",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
    except TypeError:  # pragma: no cover - opentelemetry-api < 1.23 has no bucket advice
        made.duration = meter.create_histogram("reliable.duration", unit="s", description="Duration of observed calls")
    return made
