"""Every fault kind drives `reliable.observed`, in a user's test module that uses only the public fixtures.

The module below is what a user would write: it imports `reliable` and `reliable.testing`
and uses the ``reliable_*`` fixtures and marker of the plugin, nothing private. pytester
runs it on the memory and the SQLite store, with real sleeping forbidden.

Faults: A scripted 503, a 429 an inner retry handled, an exhausted quota, a failing alert sink, an
unavailable, slow and flaky heartbeat store, a crash that leaves a stuck run, latency as duration, a
degraded result, seeded random failures, and the async twin.
"""

from __future__ import annotations

import pytest

from user_suite import run_user_tests

USER_TESTS = '''
"""A user's tests of an observed sync job, driven by every fault kind through the public fixtures."""

import asyncio

import pytest

import reliable
import reliable.alerts
from reliable.testing import Return, SimulatedCrash, api_error, http_error


def scrape():
    """The dependency: an HTTP API in real life."""
    return 3


async def ascrape():
    return 3


@reliable.observed("sync-orders", expect=lambda n: n > 0, max_age="30m", max_runtime="10m")
def sync_orders():
    return scrape()


@reliable.observed("async-orders")
async def async_orders():
    return await ascrape()


@reliable.observed("retried-orders")
@reliable.retry(attempts=3, deadline=60)
def retried_orders():
    return scrape()


def test_scripted_http_error_is_an_error_outcome(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A 503 makes the call an error: span status ERROR with error.type, calls{outcome=error}, a failure alert."""
    reliable_faults.script(f"{__name__}:scrape", [503])

    with pytest.raises(Exception, match="503"):
        sync_orders()

    (span,) = reliable_telemetry.spans("sync-orders")
    assert ("ERROR", "httpx.HTTPStatusError") == (span.status.status_code.name, span.attributes["error.type"])
    assert 1 == reliable_telemetry.metric("reliable.calls", {"reliable.outcome": "error"})
    assert ["failure"] == [a.kind for a in reliable_telemetry.alerts(operation="sync-orders")]


def test_retried_429_leaves_an_ok_call(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A 429 that the inner retry handled after its Retry-After does not make the observed call an error."""
    reliable_faults.script(f"{__name__}:scrape", [http_error(429, retry_after=2)])

    assert 3 == retried_orders()

    assert [2.0] == reliable_clock.sleeps
    assert 1 == reliable_telemetry.metric("reliable.calls", {"reliable.outcome": "ok"})
    assert ["reliable.retry.attempt"] == [e.name for _, e in reliable_telemetry.span_events("retry")]


def test_quota_exhausted_alerts_as_such(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """An exhausted quota is not retried and raises a quota_exhausted alert, so a person tops up the account."""
    reliable_faults.script(f"{__name__}:scrape", [api_error(429, code="insufficient_quota")])

    with pytest.raises(Exception, match="insufficient_quota"):
        retried_orders()

    assert "quota_exhausted" in [a.kind for a in reliable_telemetry.alerts(operation="retried-orders")]


def test_failing_alert_sink_is_reported_not_raised(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A sink that raises never breaks the call: the caller sees the job's own error, the sink failure is reported."""

    def broken_pager(alert):
        raise ConnectionRefusedError("pager unreachable")

    @reliable.observed("paged", alert=[broken_pager])
    def paged():
        return scrape()

    reliable_faults.script(f"{__name__}:scrape", [ValueError("bad rows")])

    with pytest.raises(ValueError, match="bad rows"):
        paged()

    (alert,) = reliable_telemetry.alerts(operation="paged")
    assert ("failure", "failed") == (alert.kind, alert.outcome)
    assert any("pager unreachable" in r.getMessage() for r in reliable_telemetry.logs("alerts"))


def test_store_unavailable_heartbeats_fail_open(reliable_clock, reliable_store, reliable_telemetry):
    """With the heartbeat store down, the job still runs and returns; the lost heartbeat is reported."""
    reliable_store.unavailable()

    assert 3 == sync_orders()
    assert 1 == reliable_telemetry.metric("reliable.calls", {"reliable.outcome": "ok"})
    assert reliable_telemetry.events("observed.heartbeat_failed")


def test_crash_leaves_a_stuck_run(reliable_clock, reliable_store, reliable_faults):
    """A crash mid-run leaves the run in progress in the store; after max_runtime health() calls it stuck."""
    reliable_faults.crash(f"{__name__}:scrape")

    with pytest.raises(SimulatedCrash):
        sync_orders()
    reliable_clock.advance("11m")

    assert "stuck" == reliable.health()["sync-orders"].state


def test_latency_is_the_recorded_duration(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A dependency that takes 5 s of fake time gives a 5 s duration in the reliable.duration histogram."""
    reliable_faults.latency(f"{__name__}:scrape", 5)

    sync_orders()

    (point,) = reliable_telemetry.metrics("reliable.duration")
    assert (1, 5.0) == (point.value, point.sum)


def test_zero_rows_is_degraded(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A scripted empty result fails expect=: the call is degraded, not ok, and alerts."""
    reliable_faults.script(f"{__name__}:scrape", [Return(0)])

    assert 0 == sync_orders()

    assert 1 == reliable_telemetry.metric("reliable.calls", {"reliable.outcome": "degraded"})
    assert ["degraded"] == [a.kind for a in reliable_telemetry.alerts(operation="sync-orders")]


@pytest.mark.reliable_faults(seed=21, rate=0.3)
def test_random_failures_are_counted(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """Seeded random failures: the error count in reliable.calls is exactly the number of injected faults."""
    rule = reliable_faults.random(f"{__name__}:scrape")

    for _ in range(20):
        try:
            sync_orders()
        except ConnectionError:
            pass

    errors = reliable_telemetry.metric("reliable.calls", {"reliable.outcome": "error"})
    assert rule.injected == errors > 0


def test_slow_and_flaky_store_never_breaks_the_call(reliable_clock, reliable_store, reliable_faults):
    """Heartbeat writes that are slow or fail at random never change what the job returns."""
    reliable_store.slow(1)
    first = sync_orders()
    reliable_store.flaky(0.5)

    assert [3] * 11 == [first] + [sync_orders() for _ in range(10)]


def test_async_crash_is_reported_as_an_error(reliable_clock, reliable_faults, reliable_telemetry):
    """The async twin: a crash ends the span as an error before propagating."""
    reliable_faults.crash(f"{__name__}:ascrape")

    with pytest.raises(SimulatedCrash):
        asyncio.run(async_orders())

    (span,) = reliable_telemetry.spans("async-orders")
    assert ("error", "reliable.testing._actions.SimulatedCrash") == (
        span.attributes["reliable.outcome"],
        span.attributes["error.type"],
    )
'''


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_every_fault_kind_drives_observed(pytester: pytest.Pytester, backend: str) -> None:
    """Every fault kind drives it as documented (the list is in USER_TESTS' docstrings)."""
    result = run_user_tests(pytester, "test_user_observed", USER_TESTS, backend)

    result.assert_outcomes(passed=USER_TESTS.count("\ndef test_"))
