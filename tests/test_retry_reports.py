"""What `reliable.retry` says when it retries and when it gives up: log messages, event attributes, notes."""

# ruff: noqa: F811  (the events fixture imported from test_retry is redefined as a parameter)

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import reliable
from reliable._internal import _telemetry
from reliable.testing import FakeClock, installed
from test_retry import events  # noqa: F401  (the fixture: every telemetry event of the test)


@pytest.fixture(autouse=True)
def clock() -> Iterator[FakeClock]:
    clock = FakeClock()
    with installed(clock):
        yield clock


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``run(outcomes, **options)``: decorate a function that raises or returns *outcomes* in order, and call it."""

    def call(outcomes: list[Any], **options: Any) -> Any:
        def body() -> Any:
            outcome = outcomes.pop(0) if outcomes else "ok"
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        if request.param == "sync":
            return reliable.retry(name="fetch", **options)(body)()

        async def abody() -> Any:
            return body()

        return asyncio.run(reliable.retry(name="fetch", **options)(abody)())

    return call


def attempts(events: list[_telemetry.Event]) -> list[_telemetry.Event]:
    return [e for e in events if e.name == "reliable.retry.attempt"]


def test_retry_that_on_asked_for_does_not_read_as_permanent(
    run: Callable[..., Any], events: list[_telemetry.Event], caplog: pytest.LogCaptureFixture
) -> None:
    """on=ValueError retries a ValueError: the message says on= matched it, the classification is an attribute."""
    with caplog.at_level(logging.WARNING, logger="reliable.retry"):
        run([ValueError("bad row")], on=ValueError, wait_initial=1, wait_max=1, jitter="none")

    (record,) = [r for r in caplog.records if r.name == "reliable.retry"]
    (event,) = attempts(events)
    assert "retrying 'fetch' in 1s because on= matches it: attempt 1 failed: ValueError: bad row" == record.getMessage()
    assert "permanent" not in record.getMessage()
    assert ("permanent", "on= matches ValueError") == (
        event.attributes["reliable.classification"],
        event.attributes["reliable.retry.reason"],
    )


def test_retry_by_the_classifier_names_the_kind_and_reason(
    run: Callable[..., Any], events: list[_telemetry.Event], caplog: pytest.LogCaptureFixture
) -> None:
    """A transient error retried by the default on= says its kind; the reason is an attribute."""
    with caplog.at_level(logging.WARNING, logger="reliable.retry"):
        run([ConnectionResetError("reset")], wait_initial=1, wait_max=1, jitter="none")

    (record,) = [r for r in caplog.records if r.name == "reliable.retry"]
    (event,) = attempts(events)
    assert "retrying 'fetch' in 1s: attempt 1 failed (transient): ConnectionResetError: reset" == record.getMessage()
    assert "connection error or timeout (ConnectionResetError)" == event.attributes["reliable.retry.reason"]


def test_on_types_that_also_match_the_classifier_say_the_kind(run: Callable[..., Any], events: Any) -> None:
    """on=TimeoutError retrying a timeout: the classifier agrees, so the message is the usual one."""
    run([TimeoutError("slow")], on=TimeoutError)

    (event,) = attempts(events)
    assert "failed (transient): TimeoutError: slow" in event.message


def test_rejected_result_says_so(run: Callable[..., Any], events: list[_telemetry.Event]) -> None:
    """retry_on_result: the message says the result was rejected, not that the attempt failed with an error."""
    run([None], retry_on_result=lambda r: r is None, wait_initial=1, wait_max=1, jitter="none")

    (event,) = attempts(events)
    assert "retrying 'fetch' in 1s: retry_on_result rejected the result of attempt 1" == event.message
    assert "retry_on_result rejected the result" == event.attributes["reliable.retry.reason"]


def test_give_up_because_on_does_not_match_the_next_error(
    run: Callable[..., Any], events: list[_telemetry.Event]
) -> None:
    """on=ValueError: a ValueError is retried, then a KeyError ends it; the note names on=, not the classifier."""
    with pytest.raises(KeyError) as info:
        run([ValueError("bad"), KeyError("k")], on=ValueError)

    (give_up,) = [e for e in events if e.name == "reliable.retry.give_up"]
    assert info.value.__notes__[0].endswith(": on= does not match KeyError")
    assert "on= does not match KeyError" == give_up.attributes["reliable.retry.reason"]


def test_give_up_because_a_predicate_refuses_a_transient_error(
    run: Callable[..., Any], events: list[_telemetry.Event]
) -> None:
    """A predicate that refuses a timeout the classifier would retry: the note says on= decided."""
    refused = [False]

    def on(exc: BaseException) -> bool:
        if refused[0]:
            return False
        refused[0] = True
        return True

    with pytest.raises(TimeoutError) as info:
        run([TimeoutError("1"), TimeoutError("2")], on=on)

    assert info.value.__notes__[0].endswith(": on= does not match TimeoutError")


def test_give_up_after_on_matched_every_attempt(run: Callable[..., Any], events: list[_telemetry.Event]) -> None:
    """Attempts running out on errors on= asked to retry: the give-up says so, with no '(permanent)'."""
    with pytest.raises(ValueError, match="3") as info:
        run([ValueError("1"), ValueError("2"), ValueError("3")], on=ValueError, attempts=3)

    (give_up,) = [e for e in events if e.name == "reliable.retry.give_up"]
    assert info.value.__notes__[0].endswith(": all 3 attempts failed")
    assert give_up.message.endswith("all 3 attempts failed; last error: ValueError: 3")
    assert "permanent" == give_up.attributes["reliable.classification"]


def test_block_form_reports_the_same(events: list[_telemetry.Event]) -> None:
    """reliable.attempts(on=...) words its retry the same way."""
    for attempt in reliable.attempts(on=ValueError, name="block"):
        with attempt:
            if attempt.number == 1:
                raise ValueError("bad")

    (event,) = attempts(events)
    assert "because on= matches it: attempt 1 failed: ValueError: bad" in event.message


@pytest.fixture
def quiet_logger() -> Iterator[None]:
    """The reliable.retry logger off (no record would be handled), restored afterwards."""
    logger = logging.getLogger("reliable.retry")
    saved = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(saved)


def test_nobody_listening_only_counts(quiet_logger: None) -> None:
    """With the logger off, no listener and no recording span, retries are only counted."""
    before = _telemetry.event_counts().get(("reliable.retry.attempt", "fetch"), 0)

    reliable.retry(name="fetch", wait_initial=0, wait_max=0)(_failing_once(TimeoutError("1"), TimeoutError("2")))()

    assert 2 == _telemetry.event_counts().get(("reliable.retry.attempt", "fetch"), 0) - before


def test_a_recording_span_alone_gets_the_event(quiet_logger: None) -> None:
    """With the logger off but a span recording, the span gets the attempt event with its attributes."""
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("job") as span:
        reliable.retry(name="fetch", wait_initial=0, wait_max=0, on=ValueError)(_failing_once(ValueError("x")))()

    (event,) = [e for e in span.events if e.name == "reliable.retry.attempt"]  # type: ignore[attr-defined]
    assert ("permanent", "on= matches ValueError") == (
        event.attributes["reliable.classification"],
        event.attributes["reliable.retry.reason"],
    )


def _failing_once(*errors: BaseException) -> Callable[[], str]:
    """A function that raises *errors* (default: one TimeoutError) in order, then returns "ok"."""
    pending = list(errors or [TimeoutError("slow")])

    def body() -> str:
        if pending:
            raise pending.pop(0)
        return "ok"

    return body


def test_a_broken_tracing_api_with_the_logger_off(quiet_logger: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """If looking up the current span raises, the retry goes on and is counted."""
    from reliable import _retry_run

    def broken() -> Any:
        raise RuntimeError("tracing is broken")

    monkeypatch.setattr(_retry_run.trace, "get_current_span", broken)
    before = _telemetry.event_counts().get(("reliable.retry.attempt", "fetch"), 0)

    result = reliable.retry(name="fetch", wait_initial=0, wait_max=0)(_failing_once())()

    assert ("ok", 1) == (result, _telemetry.event_counts().get(("reliable.retry.attempt", "fetch"), 0) - before)
