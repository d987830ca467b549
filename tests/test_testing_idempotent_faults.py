"""Every fault kind drives `reliable.idempotent`, in a user's test module that uses only the public fixtures.

The module below is what a user would write: it imports `reliable` and `reliable.testing`
and uses the ``reliable_*`` fixtures and marker of the plugin, nothing private. pytester
runs it on the memory and the SQLite store, with real sleeping forbidden.

Faults: An HTTP error, a crash before and after the effect, a completion that never lands, lease
takeover, an unavailable store (marker and switch), a flaky store, seeded random API failures, and a
slow store and API with a concurrent duplicate.
"""

from __future__ import annotations

import pytest

from user_suite import run_user_tests

USER_TESTS = '''
"""A user's tests of a payment wrapped in reliable.idempotent, driven by every fault kind."""

import asyncio
import threading

import pytest

import reliable
from reliable import StoreUnavailableError
from reliable.testing import SimulatedCrash

effects = []


def charge(order_id):
    """The side effect: a call to a payment API in real life."""
    effects.append(order_id)
    return f"receipt-{order_id}"


async def acharge(order_id):
    effects.append(order_id)
    return f"receipt-{order_id}"


@reliable.idempotent(key=lambda order_id: f"order:{order_id}", lease="30s", name="pay")
def pay(order_id):
    return charge(order_id)


@reliable.idempotent(key=lambda order_id: f"order:{order_id}", lease="30s", name="apay")
async def apay(order_id):
    return await acharge(order_id)


@pytest.fixture(autouse=True)
def _no_effects_yet():
    effects.clear()


def test_http_error_releases_the_key(reliable_store, reliable_faults, reliable_telemetry):
    """A 503 from the payment API releases the key: the next call charges, the one after replays."""
    reliable_faults.script(f"{__name__}:charge", [503])

    with pytest.raises(Exception, match="503"):
        pay(1)
    results = [pay(1), pay(1)]

    assert (["receipt-1", "receipt-1"], [1]) == (results, effects)
    assert 1 == len(reliable_telemetry.events("idempotent.released"))
    assert 1 == len(reliable_telemetry.events("idempotent.replay"))


def test_crash_then_lease_takeover(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """The holder crashes; its claim survives (the dead cannot release); the next call takes over after the lease."""
    reliable_faults.crash(f"{__name__}:charge")

    with pytest.raises(SimulatedCrash):
        pay(2)
    crashed_at = reliable_clock.advanced
    result = pay(2)

    assert ("receipt-2", [2]) == (result, effects)
    assert reliable_clock.advanced - crashed_at >= 30
    assert 1 == len(reliable_telemetry.events("idempotent.takeover"))


def test_crash_after_the_effect_repeats_it(reliable_clock, reliable_store, reliable_faults):
    """A crash after the charge landed, before its result was stored: the takeover charges again.

    This is why the payment call itself should carry an idempotency key for the provider.
    """
    reliable_faults.crash(f"{__name__}:charge", lands=True)

    with pytest.raises(SimulatedCrash):
        pay(3)
    result = pay(3)

    assert ("receipt-3", [3, 3]) == (result, effects)


def test_completion_that_never_lands(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """A crash at store.compare_and_set: the result is never recorded, so after the lease the work runs again."""
    reliable_faults.crash("store.compare_and_set")

    with pytest.raises(SimulatedCrash):
        pay(4)
    result = pay(4)

    assert ("receipt-4", [4, 4]) == (result, effects)
    assert 1 == len(reliable_telemetry.events("idempotent.takeover"))


def test_async_crash_then_takeover(reliable_clock, reliable_store, reliable_faults):
    """The async twin: crash, then takeover after the lease on the fake clock."""
    reliable_faults.crash(f"{__name__}:acharge")

    with pytest.raises(SimulatedCrash):
        asyncio.run(apay(5))
    result = asyncio.run(apay(5))

    assert ("receipt-5", [5]) == (result, effects)


def test_store_unavailable_fails_closed(reliable_store):
    """With the store down the payment is not attempted: StoreUnavailableError, no charge."""
    reliable_store.unavailable()

    with pytest.raises(StoreUnavailableError):
        pay(6)

    assert [] == effects


@pytest.mark.reliable_faults(store="unavailable")
def test_store_unavailable_from_the_marker(reliable_store):
    """The marker starts the store down; once it is back, the payment goes through once."""
    with pytest.raises(StoreUnavailableError):
        pay(7)
    reliable_store.healthy()

    assert ("receipt-7", "receipt-7", [7]) == (pay(7), pay(7), effects)


@pytest.mark.reliable_faults(seed=99)
def test_flaky_claims_never_charge_twice(reliable_store):
    """Seeded failures of half the claims and reads: each order is charged exactly once, however often it is tried."""
    reliable_store.flaky(0.5, ops=["put_if_absent", "get"])
    tries = 0

    for order in range(10):
        while True:
            tries += 1
            try:
                pay(order)
                break
            except StoreUnavailableError:
                pass

    assert list(range(10)) == effects
    assert tries > 10


def test_random_api_failures_release_and_retry(reliable_store, reliable_faults):
    """Seeded random failures of the payment API: each releases the key, so each order is charged once in the end."""
    rule = reliable_faults.random(f"{__name__}:charge", rate=0.5)

    for order in range(10):
        while True:
            try:
                pay(order)
                break
            except ConnectionError:
                pass

    assert list(range(10)) == effects
    assert rule.injected > 0


def test_slow_store_and_slow_api_with_a_concurrent_duplicate(reliable_clock, reliable_store, reliable_faults):
    """Store calls take 2 s and the charge 10 s of fake time; a duplicate thread waits on an in-process signal.

    The waiter never sleeps on the fake clock, so it cannot expire the holder's 30 s lease: one charge, two receipts.
    """
    reliable_store.slow(2)
    reliable_faults.latency(f"{__name__}:charge", 10)
    results = []
    threads = [threading.Thread(target=lambda: results.append(pay(8))) for _ in range(2)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert (["receipt-8", "receipt-8"], [8]) == (results, effects)
    assert reliable_clock.advanced < 30


def test_block_form_crash_then_takeover(reliable_clock, reliable_store, reliable_faults, reliable_telemetry):
    """reliable.idempotency(), the block form: a crash inside the block leaves the claim; the next entry takes over."""

    def refund(order_id):
        with reliable.idempotency(f"refund:{order_id}", lease="30s") as step:
            if step.needed:
                step.result = charge(order_id)
        return step.result

    reliable_faults.crash(f"{__name__}:charge")

    with pytest.raises(SimulatedCrash):
        refund(9)
    results = [refund(9), refund(9)]

    assert (["receipt-9", "receipt-9"], [9]) == (results, effects)
    assert reliable_clock.advanced >= 30
    assert 1 == len(reliable_telemetry.events("idempotent.takeover"))
'''


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_every_fault_kind_drives_idempotent(pytester: pytest.Pytester, backend: str) -> None:
    """Every fault kind drives it as documented (the list is in USER_TESTS' docstrings)."""
    result = run_user_tests(pytester, "test_user_idempotent", USER_TESTS, backend)

    result.assert_outcomes(passed=USER_TESTS.count("\ndef test_"))
