"""Every fault kind drives `reliable.single_instance`, in a user's test module that uses only the public fixtures.

The module below is what a user would write: it imports `reliable` and `reliable.testing`
and uses the ``reliable_*`` fixtures and marker of the plugin, nothing private. pytester
runs it on the memory and the SQLite store, with real sleeping forbidden.

Faults: An unavailable lease store (fail-closed), a crashed holder whose lease lasts until its TTL,
failed renewals that lose the lease, a slow store, a scripted error, latency as hold time, seeded
random failures, and the async twin.
"""

from __future__ import annotations

import pytest

from user_suite import run_user_tests

USER_TESTS = '''
"""A user's tests of a nightly job guarded by reliable.single_instance (store leases), driven by every fault kind."""

import asyncio

import pytest

import reliable
from reliable import LeaseLostError, StoreError, StoreUnavailableError
from reliable.testing import SimulatedCrash

runs = []


def work(n):
    """The job's body."""
    runs.append(n)
    return n


async def awork(n):
    runs.append(n)
    return n


def nightly(store, n):
    with reliable.single_instance("nightly", store=store, ttl=30) as lease:
        if lease is reliable.SKIPPED:
            return "skipped"
        return work(n)


async def anightly(store, n):
    async with reliable.single_instance("nightly", store=store, ttl=30) as lease:
        if lease is reliable.SKIPPED:
            return "skipped"
        return await awork(n)


@pytest.fixture(autouse=True)
def _no_runs_yet():
    runs.clear()


def test_store_unavailable_fails_closed(reliable_clock, reliable_store):
    """With the lease store down the job does not run: it cannot know that no one else is running."""
    reliable_store.unavailable()

    with pytest.raises(StoreUnavailableError):
        nightly(reliable_store, 1)

    assert [] == runs


def test_crash_keeps_the_lease_until_its_ttl(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A crashed holder cannot release: the next run is skipped until the 30 s TTL ends, then gets a larger token."""
    reliable_faults.crash(f"{__name__}:work")

    with pytest.raises(SimulatedCrash):
        nightly(reliable_store, 1)
    skipped = nightly(reliable_store, 2)
    reliable_clock.advance(31)
    ran = nightly(reliable_store, 3)

    first, second = [e.attributes["reliable.lock.token"] for e in reliable_telemetry.events("single_instance.acquired")]
    assert ("skipped", 3, [3]) == (skipped, ran, runs)
    assert second > first
    assert 1 == len(reliable_telemetry.events("single_instance.skipped"))


def test_failed_renewals_lose_the_lease(reliable_clock, reliable_store):
    """Renewals fail (compare-and-set unavailable); once the TTL has passed, the holder learns it lost the lease."""
    with reliable.single_instance("nightly", store=reliable_store, ttl=30) as lease:
        reliable_store.unavailable(ops=["compare_and_set"])
        with pytest.raises(StoreError):
            lease.renew()
        reliable_clock.advance(31)
        reliable_store.healthy()
        with pytest.raises(LeaseLostError):
            lease.check()


def test_slow_store_moves_fake_time(reliable_clock, reliable_store, reliable_telemetry):
    """Every store call takes 3 s of fake time: the lock is still acquired and released, with the time accounted."""
    reliable_store.slow(3)

    assert 1 == nightly(reliable_store, 1)
    assert reliable_clock.advanced >= 6
    assert 1 == len(reliable_telemetry.events("single_instance.released"))


def test_scripted_error_in_the_job_releases_the_lock(reliable_clock, reliable_store, reliable_faults):
    """A 503 inside the job propagates and the lock is released: the next run is not skipped."""
    reliable_faults.script(f"{__name__}:work", [503])

    with pytest.raises(Exception, match="503"):
        nightly(reliable_store, 1)

    assert 2 == nightly(reliable_store, 2)


def test_latency_inside_the_job_is_the_hold_time(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A job that takes 5 s of fake time holds the lock for 5 s."""
    reliable_faults.latency(f"{__name__}:work", 5)

    nightly(reliable_store, 1)

    (released,) = reliable_telemetry.events("single_instance.released")
    assert "after 5.000s" in released.message


@pytest.mark.reliable_faults(seed=5)
def test_random_job_failures_always_release(reliable_clock, reliable_store, reliable_faults):
    """Seeded random failures of the job: every run, failed or not, releases the lock, so none is skipped."""
    rule = reliable_faults.random(f"{__name__}:work", rate=0.5)
    outcomes = []

    for n in range(10):
        try:
            outcomes.append(nightly(reliable_store, n))
        except ConnectionError:
            outcomes.append("failed")

    assert "skipped" not in outcomes
    assert rule.injected == outcomes.count("failed") > 0


def test_async_crash_keeps_the_lease(reliable_clock, reliable_store, reliable_faults):
    """The async twin: a crashed holder's lease blocks the next run until its TTL ends."""
    reliable_faults.crash(f"{__name__}:awork")

    with pytest.raises(SimulatedCrash):
        asyncio.run(anightly(reliable_store, 1))
    skipped = asyncio.run(anightly(reliable_store, 2))
    reliable_clock.advance(31)

    assert ("skipped", 3) == (skipped, asyncio.run(anightly(reliable_store, 3)))
'''


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_every_fault_kind_drives_single_instance(pytester: pytest.Pytester, backend: str) -> None:
    """Every fault kind drives it as documented (the list is in USER_TESTS' docstrings)."""
    result = run_user_tests(pytester, "test_user_single", USER_TESTS, backend)

    result.assert_outcomes(passed=USER_TESTS.count("\ndef test_"))
