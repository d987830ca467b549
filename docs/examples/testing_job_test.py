"""Tests of ``testing_job.py`` against faults: each test injects one fault and asserts what happened.

Run them with ``pytest docs/examples/testing_job_test.py``; the ``reliable_*`` fixtures come from
the plugin that installing `reliable` registers. Nothing sleeps for real: every wait (backoff,
Retry-After, a lease running out, a slow API) moves the fake clock of ``reliable_clock``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import testing_job as job

import reliable
from reliable.testing import CapturedTelemetry, FakeClock, Faults, FaultyStore, SimulatedCrash, api_error, http_error


@pytest.fixture(autouse=True)
def _fresh(reliable_store: FaultyStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: a fresh default store (``reliable_store``), its own lock directory, nothing saved."""
    monkeypatch.setenv("RELIABLE_LOCK_DIR", str(tmp_path / "locks"))
    job.SAVED.clear()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """An httpx client talking to the in-process fake tickets API."""
    with httpx.Client(transport=httpx.MockTransport(job.fake_api)) as client:
        yield client


@pytest.fixture
def llm() -> job.FakeLLM:
    """A stand-in for ``openai.OpenAI()``: fault ``llm.chat.completions.create`` as you would the real client's."""
    return job.FakeLLM()


def test_timeout_then_503_are_retried(
    http: httpx.Client, llm: job.FakeLLM, reliable_clock: FakeClock, reliable_faults: Faults
) -> None:
    """A read timeout, then a 503, then the real answer: the job retries twice after backoff and succeeds."""
    reliable_faults.script((http, "get"), [httpx.ReadTimeout("read timed out"), 503, "ok"])

    assert 2 == job.run(http, llm)
    assert ["raise", "raise"] == [fault.kind for fault in reliable_faults.log]
    assert 2 == len(reliable_clock.sleeps)


def test_429_waits_as_long_as_the_server_asks(
    http: httpx.Client, llm: job.FakeLLM, reliable_clock: FakeClock, reliable_faults: Faults
) -> None:
    """A 429 with Retry-After: 30 makes the retry wait exactly 30 s (of fake time), not the short backoff."""
    reliable_faults.script((http, "get"), [http_error(429, retry_after=30)])

    assert 2 == job.run(http, llm)
    assert [30.0] == reliable_clock.sleeps


def test_llm_rate_limit_honours_retry_after_ms(
    http: httpx.Client, llm: job.FakeLLM, reliable_clock: FakeClock, reliable_faults: Faults
) -> None:
    """The LLM's RateLimitError with retry-after-ms: 1500 is retried after 1.5 s; both tickets are summarised."""
    reliable_faults.script(llm.chat.completions.create, [api_error(429, retry_after_ms=1500)])

    assert 2 == job.run(http, llm)
    assert [1.5] == reliable_clock.sleeps
    assert [1, 2] == sorted(job.SAVED)


def test_exhausted_quota_is_not_retried_and_alerts(
    http: httpx.Client,
    llm: job.FakeLLM,
    reliable_clock: FakeClock,
    reliable_faults: Faults,
    reliable_telemetry: CapturedTelemetry,
) -> None:
    """insufficient_quota is permanent: raised at once, no wait, and a quota_exhausted alert goes out."""
    rule = reliable_faults.script(llm.chat.completions.create, [api_error(429, code="insufficient_quota")])

    with pytest.raises(Exception, match="insufficient_quota") as info:
        job.run(http, llm)

    assert "RateLimitError" == type(info.value).__name__
    assert (1, []) == (rule.calls, reliable_clock.sleeps)
    assert ["quota_exhausted"] == [alert.kind for alert in reliable_telemetry.alerts(operation="ticket-digest")]


def test_crash_mid_run_saves_nothing_twice(
    http: httpx.Client,
    llm: job.FakeLLM,
    reliable_clock: FakeClock,
    reliable_faults: Faults,
    reliable_telemetry: CapturedTelemetry,
) -> None:
    """The process dies while saving ticket 2. The next run replays ticket 1 and takes ticket 2 over after its lease."""
    reliable_faults.crash("testing_job:save", after=1)

    with pytest.raises(SimulatedCrash):
        job.run(http, llm)
    assert [1] == sorted(job.SAVED)

    assert 2 == job.run(http, llm)
    assert [1, 2] == sorted(job.SAVED)
    assert 3 == llm.calls  # ticket 1 once, ticket 2 before the crash and after the takeover
    assert reliable_clock.advanced >= 60  # the crashed run's 60 s lease on ticket 2 had to run out
    assert 1 == len(reliable_telemetry.events("idempotent.replay"))
    assert 1 == len(reliable_telemetry.events("idempotent.takeover"))


def test_store_down_fails_closed(http: httpx.Client, llm: job.FakeLLM, reliable_store: FaultyStore) -> None:
    """With the state store down, no ticket is summarised: exactly-once cannot be promised, so nothing runs."""
    reliable_store.unavailable()

    with pytest.raises(reliable.StoreUnavailableError):
        job.run(http, llm)

    assert ({}, 0) == (job.SAVED, llm.calls)


@pytest.mark.reliable_faults(seed=7)
def test_flaky_store_still_summarises_each_ticket_once(
    http: httpx.Client, llm: job.FakeLLM, reliable_clock: FakeClock, reliable_store: FaultyStore
) -> None:
    """Seeded failures of 40% of the claims: rerunning until it succeeds calls the LLM once per ticket."""
    reliable_store.flaky(0.4, ops=["put_if_absent"])
    runs = 0

    while True:
        runs += 1
        try:
            job.run(http, llm)
            break
        except reliable.StoreUnavailableError:
            pass

    assert ([1, 2], 2) == (sorted(job.SAVED), llm.calls)
    assert runs > 1


@pytest.mark.reliable_faults(seed=4, rate=0.5)
def test_random_api_failures_are_retried(
    http: httpx.Client,
    llm: job.FakeLLM,
    reliable_clock: FakeClock,
    reliable_faults: Faults,
    reliable_telemetry: CapturedTelemetry,
) -> None:
    """Half the API calls fail at random (seed 4): every injected failure is retried, and the run succeeds."""
    rule = reliable_faults.random((http, "get"))

    assert 2 == job.run(http, llm)
    assert rule.injected == len(reliable_telemetry.events("retry.attempt")) > 0


def test_slow_api_takes_fake_time(
    http: httpx.Client,
    llm: job.FakeLLM,
    reliable_clock: FakeClock,
    reliable_faults: Faults,
    reliable_telemetry: CapturedTelemetry,
) -> None:
    """An API call that takes 20 s moves the fake clock 20 s, and the run's recorded duration is 20 s."""
    reliable_faults.latency((http, "get"), 20)

    assert 2 == job.run(http, llm)
    (duration,) = reliable_telemetry.metrics("reliable.duration")
    assert (20.0, 20.0) == (reliable_clock.advanced, duration.sum)


def test_failing_alert_sink_never_breaks_the_run(
    http: httpx.Client, llm: job.FakeLLM, reliable_faults: Faults, reliable_telemetry: CapturedTelemetry
) -> None:
    """No tickets makes the run degraded; its alert goes to a sink that is down, which is reported, not raised."""

    def pager(alert: reliable.alerts.Alert) -> None:
        raise ConnectionRefusedError("pager unreachable")

    reliable.configure(alerts=[pager])  # undone after the test with the rest of reliable_store's configuration
    empty = httpx.Response(200, json={"tickets": []}, request=httpx.Request("GET", job.API))
    reliable_faults.script((http, "get"), [empty])

    assert 0 == job.run(http, llm)
    (alert,) = reliable_telemetry.alerts(operation="ticket-digest")
    assert ("degraded", "failed") == (alert.kind, alert.outcome)
