"""`reliable.retry` on generator and async generator functions: retried only before the first item is delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import reliable
from reliable.testing import FakeClock, installed


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with installed(FakeClock()) as fake:
        yield fake


class Overloaded(Exception):
    """Anthropic's stream error event: HTTP 200 with an overloaded_error body."""

    def __init__(self) -> None:
        super().__init__("Overloaded")
        self.status_code = 200
        self.body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


class Script:
    """A stream that, on each opening, fails at a scripted position (or not at all)."""

    def __init__(self, *failures: int | None, items: tuple[str, ...] = ("a", "b", "c")) -> None:
        self.failures = list(failures)
        self.items = items
        self.opened = 0

    def plan(self) -> int | None:
        self.opened += 1
        return self.failures.pop(0) if self.failures else None


def run_async_stream(agen: AsyncIterator[str]) -> list[str]:
    async def collect() -> list[str]:
        return [item async for item in agen]

    return asyncio.run(collect())


def make(script: Script, kind: str) -> Any:
    """A decorated sync or async generator function following *script*."""
    if kind == "sync":

        @reliable.retry()
        def stream() -> Iterator[str]:
            fail_at = script.plan()
            for index, item in enumerate(script.items):
                if index == fail_at:
                    raise Overloaded()
                yield item
            return "finished"

        return stream

    @reliable.retry()
    async def astream() -> AsyncIterator[str]:
        fail_at = script.plan()
        for index, item in enumerate(script.items):
            await asyncio.sleep(0)
            if index == fail_at:
                raise Overloaded()
            yield item

    return astream


def consume(stream: Any, kind: str) -> list[str]:
    return list(stream()) if kind == "sync" else run_async_stream(stream())


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def test_failure_before_the_first_item_is_retried(kind: str, clock: FakeClock) -> None:
    """Two openings fail before any item; the third delivers every item exactly once."""
    script = Script(0, 0, None)

    items = consume(make(script, kind), kind)

    assert (["a", "b", "c"], 3, 2) == (items, script.opened, len(clock.sleeps))


def test_failure_after_the_first_item_propagates(kind: str, clock: FakeClock) -> None:
    """Once an item reached the consumer, a failure propagates unretried: no item is delivered twice."""
    script = Script(1)
    stream = make(script, kind)
    seen: list[str] = []

    async def acollect() -> None:
        async for item in stream():
            seen.append(item)

    with pytest.raises(Overloaded) as info:
        if kind == "sync":
            for item in stream():
                seen.append(item)
        else:
            asyncio.run(acollect())

    assert (["a"], 1, [], None) == (seen, script.opened, clock.sleeps, getattr(info.value, "__notes__", None))


def test_giving_up_before_the_first_item_raises_with_a_note(kind: str, clock: FakeClock) -> None:
    """Every opening fails: the last error comes out with the give-up note."""
    script = Script(0, 0, 0, 0, 0)

    with pytest.raises(Overloaded) as info:
        consume(make(script, kind), kind)

    assert 5 == script.opened
    assert "after 5 attempt(s)" in info.value.__notes__[0]


def test_empty_stream(kind: str, clock: FakeClock) -> None:
    """A stream with no items ends normally."""
    script = Script(items=())

    assert [] == consume(make(script, kind), kind)


def test_return_value_send_and_throw_are_forwarded(clock: FakeClock) -> None:
    """After the first item the wrapper is transparent: send(), throw() and the return value reach through."""
    attempts: list[int] = []

    @reliable.retry()
    def echo() -> Iterator[Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionResetError()
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError as exc:
                received = yield f"caught {exc}"
            if received == "stop":
                return "bye"

    gen = echo()
    first = next(gen)
    second = gen.send("x")
    third = gen.throw(ValueError("boom"))
    with pytest.raises(StopIteration) as stop:
        gen.send("stop")

    assert ("ready", "got x", "caught boom", "bye", 2) == (first, second, third, stop.value.value, len(attempts))


def test_closing_early_closes_the_wrapped_generator(clock: FakeClock) -> None:
    """Breaking out of the loop closes the inner generator (its finally runs)."""
    closed: list[bool] = []

    @reliable.retry()
    def stream() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    for item in stream():
        assert 1 == item
        break

    assert [True] == closed


def test_async_send_throw_and_close(clock: FakeClock) -> None:
    """asend(), athrow() and aclose() reach the wrapped async generator after the first item."""
    log: list[str] = []

    @reliable.retry()
    async def echo() -> AsyncIterator[str]:
        try:
            received = yield "ready"
            while True:
                try:
                    received = yield f"got {received}"
                except ValueError as exc:
                    received = yield f"caught {exc}"
        finally:
            log.append("closed")

    async def drive() -> list[str]:
        agen = echo()
        out = [await agen.__anext__(), await agen.asend("x"), await agen.athrow(ValueError("boom"))]
        await agen.aclose()
        return out

    assert (["ready", "got x", "caught boom"], ["closed"]) == (asyncio.run(drive()), log)


def test_async_exception_thrown_in_that_the_stream_does_not_handle_ends_it(clock: FakeClock) -> None:
    """athrow() of an unhandled error propagates it to the caller."""

    @reliable.retry()
    async def stream() -> AsyncIterator[int]:
        yield 1
        yield 2

    async def drive() -> None:
        agen = stream()
        await agen.__anext__()
        await agen.athrow(KeyError("k"))

    with pytest.raises(KeyError):
        asyncio.run(drive())


def test_throw_that_ends_the_stream_returns_its_value(clock: FakeClock) -> None:
    """A throw() the wrapped generator answers by returning ends the wrapper with that value."""

    @reliable.retry()
    def stream() -> Iterator[int]:
        try:
            yield 1
        except ValueError:
            return

    gen = stream()
    next(gen)

    with pytest.raises(StopIteration):
        gen.throw(ValueError("stop"))


def test_async_athrow_that_ends_the_stream(clock: FakeClock) -> None:
    """An athrow() the wrapped async generator answers by returning ends the wrapper."""

    @reliable.retry()
    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
        except ValueError:
            return

    async def drive() -> None:
        agen = stream()
        await agen.__anext__()
        await agen.athrow(ValueError("stop"))

    with pytest.raises(StopAsyncIteration):
        asyncio.run(drive())


def test_streams_count_calls_for_a_budget(clock: FakeClock) -> None:
    """Opening a retried stream counts as one call of its budget, sync and async."""
    from reliable.stores.memory import MemoryStore

    budget = reliable.RetryBudget("streams", store=MemoryStore())

    @reliable.retry(budget=budget)
    def stream() -> Iterator[int]:
        yield 1

    @reliable.retry(budget=budget)
    async def astream() -> AsyncIterator[int]:
        yield 2

    items = list(stream()) + run_async_stream(astream())  # type: ignore[arg-type]

    assert ([1, 2], 2) == (items, budget._pending)
