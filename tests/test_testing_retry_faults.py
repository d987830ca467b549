"""Every fault kind drives `reliable.retry`, in a user's test module that uses only the public fixtures.

The module below is what a user would write: it imports `reliable` and `reliable.testing`
and uses the ``reliable_*`` fixtures and marker of the plugin, nothing private. pytester
runs it on the memory and the SQLite store, with real sleeping forbidden.

Faults: Scripted timeouts and 5xx, a 429 with Retry-After (seconds and openai's -ms form), an
exhausted quota, a Retry-After past the deadline, seeded random faults, latency, a simulated crash
and a retry budget in an unavailable store.
"""

from __future__ import annotations

import pytest

from user_suite import run_user_tests

USER_TESTS = '''
"""A user's tests of a job wrapped in reliable.retry, driven by every fault kind through the public fixtures."""

import asyncio

import httpx
import pytest

import reliable
from reliable.testing import SimulatedCrash, api_error, http_error


def fetch(page):
    """The dependency: an HTTP call in real life."""
    return f"page {page}"


async def afetch(page):
    return f"page {page}"


@reliable.retry(attempts=5, deadline=60, wait_initial=1, wait_max=8)
def sync_job(page):
    return fetch(page)


@reliable.retry(attempts=5, deadline=60, wait_initial=1, wait_max=8)
async def async_job(page):
    return await afetch(page)


@reliable.retry(attempts=30, deadline=None, wait_initial=1, wait_max=1)
def patient_job(page):
    return fetch(page)


def test_scripted_timeout_and_503_are_retried(reliable_clock, reliable_faults, reliable_telemetry):
    """A timeout then a 503 are retried after backoff on the fake clock; the third attempt calls through."""
    rule = reliable_faults.script(f"{__name__}:fetch", [TimeoutError(), 503, "ok"])

    assert "page 1" == sync_job(1)
    assert 3 == rule.calls
    assert 2 == len(reliable_clock.sleeps)
    assert 2 == len(reliable_telemetry.events("retry.attempt"))


def test_async_job_is_retried(reliable_clock, reliable_faults):
    """The async twin: a reset connection is retried, awaiting the fake clock."""
    reliable_faults.script(f"{__name__}:afetch", [ConnectionResetError(), "ok"])

    assert "page 2" == asyncio.run(async_job(2))
    assert 1 == len(reliable_clock.sleeps)


def test_429_retry_after_is_honoured(reliable_clock, reliable_faults):
    """A 429 with Retry-After: 7 waits exactly 7 s of fake time, not the 1 s backoff."""
    reliable_faults.script(f"{__name__}:fetch", [http_error(429, retry_after=7)])

    assert "page 1" == sync_job(1)
    assert [7.0] == reliable_clock.sleeps


def test_openai_retry_after_ms_wins(reliable_clock, reliable_faults):
    """An openai RateLimitError with retry-after-ms: 1500 waits 1.5 s."""
    reliable_faults.script(f"{__name__}:fetch", [api_error(429, retry_after_ms=1500, retry_after=2)])

    assert "page 1" == sync_job(1)
    assert [1.5] == reliable_clock.sleeps


def test_quota_exhausted_is_not_retried(reliable_clock, reliable_faults, reliable_telemetry):
    """A 429 whose body says insufficient_quota is permanent: raised at once, no wait, no second call."""
    rule = reliable_faults.script(f"{__name__}:fetch", [api_error(429, code="insufficient_quota")])

    with pytest.raises(Exception) as info:
        sync_job(1)

    assert "RateLimitError" == type(info.value).__name__
    assert (1, []) == (rule.calls, reliable_clock.sleeps)
    assert [] == reliable_telemetry.events("retry.attempt")


def test_retry_after_past_the_deadline_gives_up_at_once(reliable_clock, reliable_faults):
    """A 503 asking for 120 s when the deadline is 60 s gives up without sleeping in vain."""
    reliable_faults.script(f"{__name__}:fetch", [http_error(503, retry_after=120)])

    with pytest.raises(httpx.HTTPStatusError):
        sync_job(1)

    assert [] == reliable_clock.sleeps


@pytest.mark.reliable_faults(seed=1234, rate=0.5)
def test_seeded_random_faults_are_retried(reliable_clock, reliable_faults):
    """Random connection errors at the marker's rate and seed: every page arrives; each failure cost one wait."""
    rule = reliable_faults.random(f"{__name__}:fetch")

    pages = [patient_job(i) for i in range(10)]

    assert [f"page {i}" for i in range(10)] == pages
    assert rule.injected == len(reliable_clock.sleeps)
    assert rule.injected > 0


def test_latency_uses_up_the_deadline(reliable_clock, reliable_faults):
    """Each attempt takes 25 s of fake time and fails: the 60 s deadline stops retries before attempts=5 does."""
    reliable_faults.latency(f"{__name__}:fetch", 25)
    rule = reliable_faults.script(f"{__name__}:fetch", [], then=503)

    with pytest.raises(httpx.HTTPStatusError) as info:
        sync_job(1)

    assert rule.calls < 5
    assert reliable_clock.advanced >= 50
    assert any("deadline" in note for note in getattr(info.value, "__notes__", []))


def test_simulated_crash_is_never_retried(reliable_clock, reliable_faults):
    """A crash is not an error to retry: it passes through on the first call."""
    rule = reliable_faults.crash(f"{__name__}:fetch")

    with pytest.raises(SimulatedCrash):
        sync_job(1)

    assert (1, []) == (rule.calls, reliable_clock.sleeps)


def test_budget_fails_open_when_the_store_is_down(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A retry budget kept in an unavailable store allows the retry (fails open) and says so in a warning."""
    budget = reliable.RetryBudget("api", ratio=0, min_per_second=0)

    @reliable.retry(attempts=3, budget=budget, wait_initial=1)
    def budgeted():
        return fetch(1)

    reliable_faults.script(f"{__name__}:fetch", [503])
    reliable_store.unavailable()

    assert "page 1" == budgeted()
    assert any("allowing the retry" in r.getMessage() for r in reliable_telemetry.logs())


def test_empty_budget_stops_retries(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """With the store up, an empty budget (no ratio, no floor) fails fast instead of retrying."""
    budget = reliable.RetryBudget("api", ratio=0, min_per_second=0)

    @reliable.retry(attempts=3, budget=budget, wait_initial=1)
    def budgeted():
        return fetch(1)

    reliable_faults.script(f"{__name__}:fetch", [503])

    with pytest.raises(httpx.HTTPStatusError):
        budgeted()
    assert 1 == len(reliable_telemetry.events("retry.budget_exhausted"))


def test_block_form_honours_retry_after(reliable_clock, reliable_faults):
    """reliable.attempts(), the block form, retries a scripted 429 after its Retry-After and a timeout after backoff."""
    reliable_faults.script(f"{__name__}:fetch", [http_error(429, retry_after=4), TimeoutError(), "ok"])

    for attempt in reliable.attempts(attempts=5, wait_initial=1, wait_max=1, jitter=False):
        with attempt:
            page = fetch(3)

    assert ("page 3", [4.0, 1.0]) == (page, reliable_clock.sleeps)
'''


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_every_fault_kind_drives_retry(pytester: pytest.Pytester, backend: str) -> None:
    """Every fault kind drives it as documented (the list is in USER_TESTS' docstrings)."""
    result = run_user_tests(pytester, "test_user_retry", USER_TESTS, backend)

    result.assert_outcomes(passed=USER_TESTS.count("\ndef test_"))
