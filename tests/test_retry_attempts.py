"""`reliable.attempts`: the block form, ``for``/``async for`` over attempts with ``with attempt:``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import reliable
from reliable._internal import _telemetry
from reliable.testing import FakeClock, installed


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with installed(FakeClock()) as fake:
        yield fake


@pytest.fixture
def events() -> Iterator[list[_telemetry.Event]]:
    seen: list[_telemetry.Event] = []
    _telemetry.add_listener(seen.append)
    yield seen
    _telemetry.remove_listener(seen.append)


class RateLimited(Exception):
    def __init__(self, wait: str) -> None:
        super().__init__("429")
        self.status = 429
        self.headers = {"retry-after": wait}


def run_block(kind: str, outcomes: list[BaseException | None], **options: Any) -> list[int]:
    """Run a block that raises *outcomes* in order (None = success) and return the attempt numbers seen."""
    seen: list[int] = []
    queue = list(outcomes)

    def body(number: int) -> None:
        seen.append(number)
        outcome = queue.pop(0) if queue else None
        if outcome is not None:
            raise outcome

    if kind == "sync":
        for attempt in reliable.attempts(**options):
            with attempt:
                body(attempt.number)
        return seen

    async def main() -> None:
        async for attempt in reliable.attempts(**options):
            with attempt:
                await asyncio.sleep(0)
                body(attempt.number)

    asyncio.run(main())
    return seen


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def test_block_succeeds_first_time(kind: str, clock: FakeClock, events: list[_telemetry.Event]) -> None:
    """One attempt, no sleep, no event."""
    seen = run_block(kind, [None])

    assert ([1], [], []) == (seen, clock.sleeps, [e.event for e in events if e.primitive == "retry"])


def test_block_retries_transient_failures(kind: str, clock: FakeClock, events: list[_telemetry.Event]) -> None:
    """Failures inside ``with attempt:`` are retried with the library clock's sleep and reported."""
    seen = run_block(kind, [ConnectionResetError(), TimeoutError(), None], wait_initial=1, jitter="none")

    assert ([1, 2, 3], [1.0, 2.0]) == (seen, clock.sleeps)
    assert ["attempt", "attempt"] == [e.event for e in events if e.primitive == "retry"]


def test_block_gives_up_with_the_callers_exception(kind: str, clock: FakeClock) -> None:
    """When attempts run out the loop raises the block's own last exception with the give-up note."""
    last = TimeoutError("3")

    with pytest.raises(TimeoutError) as info:
        run_block(kind, [TimeoutError("1"), TimeoutError("2"), last], attempts=3, name="sync-block")

    assert last is info.value
    assert info.value.__notes__[0].startswith("reliable.retry gave up on 'sync-block' after 3 attempt(s)")


def test_block_does_not_retry_permanent_errors(kind: str, clock: FakeClock) -> None:
    """A ValueError is raised from the first attempt, untouched."""
    with pytest.raises(ValueError) as info:
        run_block(kind, [ValueError("bad"), None])

    assert (None, []) == (getattr(info.value, "__notes__", None), clock.sleeps)


def test_block_honours_retry_after_and_the_deadline(kind: str, clock: FakeClock) -> None:
    """retry-after 5 is slept; retry-after 500 past the 60 s deadline gives up at once."""
    with pytest.raises(RateLimited) as info:
        run_block(kind, [RateLimited("5"), RateLimited("500")])

    assert [5.0] == clock.sleeps
    assert "the server asked to wait 500s" in info.value.__notes__[0]


def test_block_on_types(kind: str, clock: FakeClock) -> None:
    """on= types apply to the block form too."""
    seen = run_block(kind, [KeyError("k"), None], on=KeyError)

    assert [1, 2] == seen


def test_block_lets_base_exceptions_through(kind: str, clock: FakeClock) -> None:
    """KeyboardInterrupt inside the block ends the loop at once."""
    with pytest.raises(KeyboardInterrupt):
        run_block(kind, [KeyboardInterrupt(), None])

    assert [] == clock.sleeps


def test_block_deadline_on_the_fake_clock(clock: FakeClock) -> None:
    """The deadline is measured on the library clock, not tenacity's time.monotonic."""
    seen: list[int] = []

    with pytest.raises(TimeoutError) as info:
        for attempt in reliable.attempts(attempts=None, deadline=30, wait_initial=0, wait_max=0):
            with attempt:
                seen.append(attempt.number)
                clock.advance(11)
                raise TimeoutError()

    assert [1, 2, 3] == seen
    assert info.value.__notes__[0].endswith("the 30s deadline passed")


def test_attempts_object_is_reusable_and_repr(clock: FakeClock) -> None:
    """Each iteration starts again from attempt 1; repr names the loop."""
    loop = reliable.attempts(name="copy", attempts=2)
    numbers = []
    for _ in range(2):
        for attempt in loop:
            with attempt:
                numbers.append(attempt.number)

    assert [1, 1] == numbers
    assert repr(loop).startswith("<Attempts 'copy' ")
    assert "<Attempt number=1>" == repr(next(iter(loop)))


def test_attempts_validates_arguments() -> None:
    """attempts() raises ConfigError like retry()."""
    with pytest.raises(reliable.ConfigError):
        reliable.attempts(attempts=0)
