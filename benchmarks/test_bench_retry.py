"""reliable.retry side by side with tenacity, stamina and backoff, in one process.

Run: ``pytest benchmarks/test_bench_retry.py --benchmark-only -p no:cacheprovider``

Three scenarios, each against its baseline:

- sync success path: the decorated function returns at once (baseline: a bare call);
- async success path: the same for ``async def``; coroutines are driven with ``send(None)``,
  so the numbers are the decorators' own cost, without an event loop;
- raise twice then succeed, zero wait: two retryable exceptions then a value (baseline:
  a hand-written loop). tenacity gets ``wait_none()`` and a no-op ``sleep``; reliable runs
  under a `FakeClock` (its sleeps take no time); stamina and backoff sleep ``time.sleep(0)``.
  reliable's retries emit two WARNING log records per call: measured once with the
  ``reliable.retry`` logger enabled (records created, handled by a NullHandler) and once
  with it at ERROR (no records; span events and counters still run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import backoff
import pytest
import stamina
import tenacity

import reliable
from reliable.testing import FakeClock, installed

SYNC = "retry: sync success path"
ASYNC = "retry: async success path"
FLAKY = "retry: raise twice then succeed (zero wait)"


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine suspended")


def label(benchmark: Any, group: str, name: str, *, baseline: bool = False) -> None:
    benchmark.group = group
    benchmark.extra_info["label"] = name
    if baseline:
        benchmark.extra_info["baseline"] = True


@pytest.fixture(autouse=True)
def _quiet_peers() -> Iterator[None]:
    """Peers log nothing by default; keep stamina's instrumentation off so it is not charged for logging."""
    stamina.instrumentation.set_on_retry_hooks([])
    yield
    stamina.instrumentation.set_on_retry_hooks(None)


# -- sync success path --------------------------------------------------------------------------------------------


def work(x: int) -> int:
    return x


SYNC_CASES: dict[str, Callable[[int], int]] = {
    "bare call": work,
    "reliable.retry": reliable.retry()(work),
    "tenacity.retry (5 attempts, random exponential)": tenacity.retry(
        stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_random_exponential(max=30), reraise=True
    )(work),
    "stamina.retry(on=Exception)": stamina.retry(on=Exception)(work),
    "backoff.on_exception(expo, max_tries=5)": backoff.on_exception(backoff.expo, Exception, max_tries=5)(work),
}


@pytest.mark.parametrize("name", list(SYNC_CASES))
def test_sync_success(benchmark: Any, name: str) -> None:
    fn = SYNC_CASES[name]
    label(benchmark, SYNC, name, baseline=name == "bare call")

    assert 7 == benchmark(fn, 7)


# -- async success path -------------------------------------------------------------------------------------------


async def awork(x: int) -> int:
    return x


ASYNC_CASES: dict[str, Callable[[int], Coroutine[Any, Any, int]]] = {
    "bare async call": awork,
    "reliable.retry": reliable.retry()(awork),
    "tenacity.retry (5 attempts, random exponential)": tenacity.retry(
        stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_random_exponential(max=30), reraise=True
    )(awork),
    "stamina.retry(on=Exception)": stamina.retry(on=Exception)(awork),
    "backoff.on_exception(expo, max_tries=5)": backoff.on_exception(backoff.expo, Exception, max_tries=5)(awork),
}


@pytest.mark.parametrize("name", list(ASYNC_CASES))
def test_async_success(benchmark: Any, name: str) -> None:
    fn = ASYNC_CASES[name]
    label(benchmark, ASYNC, name, baseline=name == "bare async call")

    assert 7 == benchmark(lambda: drive(fn(7)))


# -- raise twice then succeed -------------------------------------------------------------------------------------


class Flaky:
    """Raises ConnectionResetError on two calls out of three, returns on the third."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        if self.n % 3:
            raise ConnectionResetError("reset")
        return "ok"


def hand_written(fn: Callable[[], str]) -> Callable[[], str]:
    def loop() -> str:
        for attempt in range(5):
            try:
                return fn()
            except ConnectionError:
                if attempt == 4:
                    raise
        raise AssertionError

    return loop


def _noop_sleep(seconds: float) -> None:
    return None


FLAKY_CASES: dict[str, Callable[[Callable[[], str]], Callable[[], str]]] = {
    "hand-written loop": hand_written,
    "reliable.retry (FakeClock, WARNING records to a NullHandler)": reliable.retry(wait_initial=0, wait_max=0),
    "reliable.retry (FakeClock, reliable.retry logger at ERROR)": reliable.retry(wait_initial=0, wait_max=0),
    "tenacity.retry (wait_none, no-op sleep)": tenacity.retry(
        stop=tenacity.stop_after_attempt(5),
        wait=tenacity.wait_none(),
        retry=tenacity.retry_if_exception_type(ConnectionError),
        sleep=_noop_sleep,
        reraise=True,
    ),
    "stamina.retry (zero waits, time.sleep(0))": stamina.retry(
        on=ConnectionError, attempts=5, wait_initial=0, wait_max=0, wait_jitter=0
    ),
    "backoff.on_exception (constant 0, time.sleep(0))": backoff.on_exception(
        backoff.constant, ConnectionError, max_tries=5, interval=0, jitter=None
    ),
}


@pytest.fixture
def retry_logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    """The ``reliable.retry`` logger, detached from pytest's capturing handlers; restored afterwards."""
    logger = logging.getLogger("reliable.retry")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    yield logger
    logger.setLevel(saved[0])
    logger.propagate = saved[1]
    logger.handlers[:] = saved[2]


@pytest.mark.parametrize("name", list(FLAKY_CASES))
def test_raise_twice_then_succeed(benchmark: Any, name: str, retry_logger: logging.Logger) -> None:
    flaky = Flaky()

    def target() -> str:  # backoff's log handlers need a __name__
        return flaky()

    fn = FLAKY_CASES[name](target)
    label(benchmark, FLAKY, name, baseline=name == "hand-written loop")
    # "logs on": records are created and handled by a NullHandler (not by pytest's capturing handlers)
    retry_logger.setLevel(logging.ERROR if "at ERROR" in name else logging.WARNING)
    retry_logger.propagate = False
    retry_logger.handlers[:] = [logging.NullHandler()]

    with installed(FakeClock()):
        assert "ok" == benchmark(fn)
