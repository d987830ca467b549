"""`reliable.retry` as a decorator of sync and async functions (one test body, both modes)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import reliable
from reliable._internal import _telemetry
from reliable._retry_run import _warned
from reliable.testing import FakeClock, installed


class Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None, request: Any = None) -> None:
        self.status_code = status
        self.headers = headers or {}
        self.request = request


class HTTPError(Exception):
    """An httpx/requests-shaped status error."""

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, headers)
        if body is not None:
            self.body = body


class Flaky:
    """Raises or returns its outcomes in order, then returns "ok"; counts calls."""

    def __init__(self, *outcomes: Any, clock: FakeClock | None = None, takes: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.clock = clock
        self.takes = takes

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.clock is not None and self.takes:
            self.clock.advance(self.takes)
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Mode:
    """Decorate a plain body as a sync function or as an async one, and call it synchronously either way."""

    def __init__(self, name: str) -> None:
        self.name = name

    def decorate(self, body: Callable[..., Any], **options: Any) -> Callable[..., Any]:
        if self.name == "sync":

            def call(*args: Any, **kwargs: Any) -> Any:
                return body(*args, **kwargs)

            return reliable.retry(**options)(call)

        async def acall(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return body(*args, **kwargs)

        wrapped = reliable.retry(**options)(acall)
        return lambda *args, **kwargs: asyncio.run(wrapped(*args, **kwargs))


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    return Mode(request.param)


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


def retry_events(events: list[_telemetry.Event]) -> list[str]:
    return [e.event for e in events if e.primitive == "retry"]


# -- success and retries ------------------------------------------------------------------------------------------


def test_success_first_time_sleeps_and_reports_nothing(
    mode: Mode, clock: FakeClock, events: list[_telemetry.Event]
) -> None:
    """A call that works is called once, returns its value, never sleeps and emits no event."""
    body = Flaky("value")

    result = mode.decorate(body)(1, key="x")

    assert ("value", 1, [], []) == (result, body.calls, clock.sleeps, retry_events(events))


def test_transient_failures_are_retried_until_success(
    mode: Mode, clock: FakeClock, events: list[_telemetry.Event]
) -> None:
    """Two connection errors then success: three calls, two sleeps, two WARNING attempt events, the value."""
    body = Flaky(ConnectionResetError("reset"), TimeoutError("slow"))

    result = mode.decorate(body, name="fetch")()

    attempts = [e for e in events if e.name == "reliable.retry.attempt"]
    assert ("ok", 3, 2) == (result, body.calls, len(clock.sleeps))
    assert [logging.WARNING] * 2 == [e.level for e in attempts]
    assert [
        {"op": "fetch", "attempt": 1, "type": "ConnectionResetError", "kind": "transient"},
        {"op": "fetch", "attempt": 2, "type": "TimeoutError", "kind": "transient"},
    ] == [
        {
            "op": e.attributes["reliable.operation"],
            "attempt": e.attributes["reliable.attempt"],
            "type": e.attributes["error.type"],
            "kind": e.attributes["reliable.classification"],
        }
        for e in attempts
    ]
    assert clock.sleeps == [e.attributes["reliable.retry.wait"] for e in attempts]


def test_unjittered_schedule_doubles_and_is_capped(mode: Mode, clock: FakeClock) -> None:
    """jitter='none' sleeps wait_initial * 2**(n-1), capped at wait_max."""
    body = Flaky(*[TimeoutError()] * 5)

    mode.decorate(body, attempts=6, deadline=None, wait_initial=1, wait_max=5, jitter="none")()

    assert [1.0, 2.0, 4.0, 5.0, 5.0] == clock.sleeps


def test_full_jitter_stays_below_the_ceiling(mode: Mode, clock: FakeClock) -> None:
    """With full jitter every sleep is within [0, min(wait_max, wait_initial * 2**(n-1))]."""
    body = Flaky(*[TimeoutError()] * 6)

    mode.decorate(body, attempts=7, deadline=None, wait_initial=1, wait_max=8)()

    ceilings = [1, 2, 4, 8, 8, 8]
    assert [True] * 6 == [0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True)]


def test_ten_attempt_schedule_runs_instantly_on_the_fake_clock(mode: Mode, clock: FakeClock) -> None:
    """A schedule of minutes of backoff takes no real time under FakeClock."""
    body = Flaky(*[TimeoutError()] * 9)
    started = time.perf_counter()

    result = mode.decorate(body, attempts=10, deadline=None, wait_initial=10, wait_max=60, jitter="none")()

    assert ("ok", 10, 9) == (result, body.calls, len(clock.sleeps))
    assert sum(clock.sleeps) == clock.advanced
    assert time.perf_counter() - started < 2.0


# -- giving up ---------------------------------------------------------------------------------------------------


def test_giving_up_reraises_the_callers_exception_with_a_note(
    mode: Mode, clock: FakeClock, events: list[_telemetry.Event]
) -> None:
    """After the last attempt the function's own last exception comes out, with a PEP 678 note and an ERROR event."""
    last = TimeoutError("third")
    body = Flaky(TimeoutError("first"), TimeoutError("second"), last)

    with pytest.raises(TimeoutError) as info:
        mode.decorate(body, attempts=3, name="fetch")()

    give_up = [e for e in events if e.name == "reliable.retry.give_up"]
    assert last is info.value
    assert 1 == len(info.value.__notes__)
    assert info.value.__notes__[0].startswith("reliable.retry gave up on 'fetch' after 3 attempt(s) over ")
    assert info.value.__notes__[0].endswith(": all 3 attempts failed")
    assert [(logging.ERROR, 3, "transient", last)] == [
        (e.level, e.attributes["reliable.retry.attempts"], e.attributes["reliable.classification"], e.exception)
        for e in give_up
    ]


def test_no_exception_chain_between_attempts(mode: Mode, clock: FakeClock) -> None:
    """Earlier attempts' exceptions are not chained as __context__ of the one raised."""
    body = Flaky(TimeoutError("1"), TimeoutError("2"))

    with pytest.raises(TimeoutError) as info:
        mode.decorate(body, attempts=2)()

    assert info.value.__context__ is None


def test_permanent_error_is_raised_untouched(mode: Mode, clock: FakeClock, events: list[_telemetry.Event]) -> None:
    """A 404 is raised at once, without a note or an event."""
    error = HTTPError(404)
    body = Flaky(error)

    with pytest.raises(HTTPError) as info:
        mode.decorate(body)()

    assert (error, 1, [], None, []) == (
        info.value,
        body.calls,
        clock.sleeps,
        getattr(info.value, "__notes__", None),
        retry_events(events),
    )


def test_permanent_error_after_retries_gets_a_note(mode: Mode, clock: FakeClock) -> None:
    """A 503 then a 400: the 400 is raised after two attempts, noting why it stopped."""
    body = Flaky(HTTPError(503), HTTPError(400))

    with pytest.raises(HTTPError) as info:
        mode.decorate(body)()

    assert 2 == body.calls
    assert info.value.__notes__[0].endswith(": HTTP 400 is not retried")


def test_quota_exhausted_429_is_not_retried(mode: Mode, clock: FakeClock) -> None:
    """openai's insufficient_quota 429 is raised at once: it needs a human, not a retry."""
    body = Flaky(HTTPError(429, {"retry-after": "1"}, body={"code": "insufficient_quota"}))

    with pytest.raises(HTTPError):
        mode.decorate(body)()

    assert (1, []) == (body.calls, clock.sleeps)


def test_base_exceptions_pass_through(mode: Mode, clock: FakeClock) -> None:
    """KeyboardInterrupt is never retried or annotated."""
    body = Flaky(KeyboardInterrupt())

    with pytest.raises(KeyboardInterrupt) as info:
        mode.decorate(body)()

    assert (1, None) == (body.calls, getattr(info.value, "__notes__", None))


# -- Retry-After and the deadline ---------------------------------------------------------------------------------


def test_retry_after_replaces_the_backoff_even_above_wait_max(mode: Mode, clock: FakeClock) -> None:
    """A 429 with retry-after: 20 sleeps exactly 20 s though wait_max is 1 s."""
    body = Flaky(HTTPError(429, {"retry-after": "20"}))

    result = mode.decorate(body, wait_max=1)()

    assert ("ok", [20.0]) == (result, clock.sleeps)


def test_retry_after_ms_and_http_date(mode: Mode) -> None:
    """retry-after-ms and an HTTP-date are honoured on the library clock: the date is 31 s ahead, 1.5 s later."""
    start = 1_800_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(start + 31))
    body = Flaky(HTTPError(503, {"retry-after-ms": "1500"}), HTTPError(503, {"retry-after": date}))

    with installed(FakeClock(start=start)) as clock:
        mode.decorate(body)()

    assert [1.5, 29.5] == clock.sleeps


def test_retry_after_past_the_deadline_gives_up_at_once(
    mode: Mode, clock: FakeClock, events: list[_telemetry.Event]
) -> None:
    """A requested wait longer than the time left raises at once instead of sleeping in vain."""
    error = HTTPError(429, {"retry-after": "120"})
    body = Flaky(error)

    with pytest.raises(HTTPError) as info:
        mode.decorate(body, deadline=60)()

    assert (1, [], ["give_up"]) == (body.calls, clock.sleeps, retry_events(events))
    assert "the server asked to wait 120s but only 60s of the 60s deadline were left" in info.value.__notes__[0]


def test_max_server_wait_bounds_what_is_honoured(mode: Mode, clock: FakeClock) -> None:
    """retry-after beyond max_server_wait gives up at once."""
    body = Flaky(HTTPError(503, {"retry-after": "45"}))

    with pytest.raises(HTTPError) as info:
        mode.decorate(body, max_server_wait=30)()

    assert [] == clock.sleeps
    assert "more than max_server_wait=30s" in info.value.__notes__[0]


def test_deadline_counts_slow_attempts_on_the_library_clock(mode: Mode, clock: FakeClock) -> None:
    """Attempts that take 20 s each exhaust a 50 s deadline after three of them, whatever attempts allows."""
    body = Flaky(*[TimeoutError()] * 10, clock=clock, takes=20)

    with pytest.raises(TimeoutError) as info:
        mode.decorate(body, attempts=10, deadline=50, wait_initial=0, wait_max=0)()

    assert 3 == body.calls
    assert info.value.__notes__[0].endswith("the 50s deadline passed")


def test_backoff_that_would_pass_the_deadline_gives_up(mode: Mode, clock: FakeClock) -> None:
    """A 4 s backoff with 3 s left gives up rather than start the next attempt late."""
    body = Flaky(*[TimeoutError()] * 5)

    with pytest.raises(TimeoutError) as info:
        mode.decorate(body, attempts=10, deadline=7, wait_initial=1, wait_max=10, jitter="none")()

    assert [1.0, 2.0] == clock.sleeps
    assert "would start after the 7s deadline" in info.value.__notes__[0]


# -- on= and retry_on_result= --------------------------------------------------------------------------------------


def test_on_exception_types_replace_the_classifier(mode: Mode, clock: FakeClock) -> None:
    """on=ValueError retries a ValueError (which the classifier would not) and not a TimeoutError."""
    retried = Flaky(ValueError("x"))
    not_retried = Flaky(TimeoutError())

    result = mode.decorate(retried, on=ValueError)()
    with pytest.raises(TimeoutError):
        mode.decorate(not_retried, on=(ValueError, KeyError))()

    assert ("ok", 2, 1) == (result, retried.calls, not_retried.calls)


def test_on_predicate(mode: Mode, clock: FakeClock) -> None:
    """on=predicate decides per exception; Retry-After is still honoured."""
    body = Flaky(HTTPError(409, {"retry-after": "3"}), HTTPError(418))

    with pytest.raises(HTTPError) as info:
        mode.decorate(body, on=lambda exc: exc.response.status_code == 409)()

    assert (418, 2, [3.0]) == (info.value.response.status_code, body.calls, clock.sleeps)


def test_retry_on_result(mode: Mode, clock: FakeClock) -> None:
    """A result the predicate rejects is retried; an accepted one is returned."""
    body = Flaky(None, None, "done")

    result = mode.decorate(body, retry_on_result=lambda r: r is None)()

    assert ("done", 3, 2) == (result, body.calls, len(clock.sleeps))


def test_retry_on_result_returns_the_last_result_when_attempts_run_out(
    mode: Mode, clock: FakeClock, events: list[_telemetry.Event]
) -> None:
    """When every result is rejected, the last one is returned and give_up is reported."""
    body = Flaky("pending", "pending", "pending")

    result = mode.decorate(body, attempts=3, retry_on_result=lambda r: r == "pending")()

    assert ("pending", 3, ["attempt", "attempt", "give_up"]) == (result, body.calls, retry_events(events))


# -- spans --------------------------------------------------------------------------------------------------------


def test_attempt_count_on_the_current_span_and_errors_do_not_fail_it(mode: Mode, clock: FakeClock) -> None:
    """After retries the current span carries reliable.retry.attempts, one event per attempt, and stays unset (OK)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    body = Flaky(TimeoutError(), TimeoutError())

    with provider.get_tracer("test").start_as_current_span("op"):
        mode.decorate(body)()

    (span,) = exporter.get_finished_spans()
    assert 3 == span.attributes["reliable.retry.attempts"]
    assert ["reliable.retry.attempt"] * 2 == [e.name for e in span.events]
    assert StatusCode.UNSET == span.status.status_code


# -- SDK-internal retries -----------------------------------------------------------------------------------------


class Request:
    def __init__(self, count: int) -> None:
        self.headers = {"x-stainless-retry-count": str(count)}


def test_sdk_retries_count_toward_attempts_and_warn_once(mode: Mode, clock: FakeClock) -> None:
    """An SDK that already retried twice per call uses up the attempts faster, and the user is warned once."""
    name = f"sdk-{mode.name}"
    _warned.discard(name)

    def sdk_error() -> Exception:
        error = HTTPError(503)
        error.response.request = Request(2)
        return error

    body = Flaky(sdk_error(), sdk_error(), sdk_error())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(HTTPError) as info:
            mode.decorate(body, attempts=5, name=name)()

    assert 2 == body.calls
    assert "after 6 attempt(s) (4 of them inside the client library)" in info.value.__notes__[0]
    assert 1 == len([w for w in caught if "max_retries=0" in str(w.message)])


# -- decoration ---------------------------------------------------------------------------------------------------


def test_signature_name_and_docstring_are_kept() -> None:
    """The wrapper looks like the function: name, docstring, signature, __wrapped__."""

    def fetch(url: str, *, timeout: float = 1.0) -> str:
        """Fetch it."""
        return url

    wrapped = reliable.retry()(fetch)

    assert ("fetch", "Fetch it.", inspect.signature(fetch), fetch) == (
        wrapped.__name__,
        wrapped.__doc__,
        inspect.signature(wrapped),
        wrapped.__wrapped__,  # type: ignore[attr-defined]
    )


def test_async_function_stays_a_coroutine_function() -> None:
    """Decorating an async function gives an async function."""

    async def fetch() -> int:
        return 1

    assert inspect.iscoroutinefunction(reliable.retry()(fetch))


def test_methods_classmethods_and_staticmethods(clock: FakeClock) -> None:
    """The decorator works on methods (self is passed through), under classmethod and staticmethod."""

    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky(TimeoutError())

        @reliable.retry()
        def get(self, path: str) -> str:
            return f"{self.flaky()}:{path}"

        @classmethod
        @reliable.retry()
        def make(cls, n: int) -> tuple[type, int]:
            return cls, n

        @staticmethod
        @reliable.retry()
        def twice(n: int) -> int:
            return 2 * n

    client = Client()

    assert ("ok:/x", Client, 2, 6) == (client.get("/x"), Client.make(2)[0], Client.make(2)[1], Client.twice(3))
    assert 2 == client.flaky.calls


def test_async_method(clock: FakeClock) -> None:
    """Async methods retry too."""

    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky(ConnectionError())

        @reliable.retry()
        async def get(self) -> str:
            return str(self.flaky())

    client = Client()

    assert ("ok", 2) == (asyncio.run(client.get()), client.flaky.calls)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"attempts": None, "deadline": None}, "deadline"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": "soon"}, "deadline"),
        ({"wait_initial": -1}, "wait_initial"),
        ({"wait_initial": 5, "wait_max": 1}, "wait_max"),
        ({"wait_exp_base": 0.5}, "wait_exp_base"),
        ({"jitter": "random"}, "jitter"),
        ({"jitter": [1]}, "jitter"),
        ({"on": ()}, "on"),
        ({"on": int}, "on"),
        ({"on": (ValueError, "x")}, "on"),
        ({"on": 3}, "on"),
        ({"retry_on_result": 3}, "retry_on_result"),
        ({"budget": 0.2}, "budget"),
        ({"max_server_wait": -5}, "max_server_wait"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_arguments_raise_config_error_at_once(kwargs: dict[str, Any], parameter: str) -> None:
    """Bad values raise ConfigError naming the parameter when retry(...) is called, before decorating."""
    with pytest.raises(reliable.ConfigError) as info:
        reliable.retry(**kwargs)

    assert parameter == info.value.parameter  # type: ignore[attr-defined]


def test_durations_accept_strings_and_timedeltas(clock: FakeClock) -> None:
    """deadline='2m', wait_initial=timedelta(...) are accepted."""
    from datetime import timedelta

    body = Flaky(TimeoutError())

    reliable.retry(deadline="2m", wait_initial=timedelta(seconds=2), jitter=False)(body)()

    assert [2.0] == clock.sleeps


def test_retry_on_result_on_a_generator_is_rejected() -> None:
    """retry_on_result makes no sense for a stream: ConfigError when decorating."""

    def stream() -> Iterator[int]:
        yield 1

    with pytest.raises(reliable.ConfigError) as info:
        reliable.retry(retry_on_result=bool)(stream)

    assert "retry_on_result" == info.value.parameter  # type: ignore[attr-defined]


def test_not_a_function_is_rejected() -> None:
    """retry()(42) says how to use it."""
    with pytest.raises(reliable.ConfigError, match="decorates functions"):
        reliable.retry()(42)  # type: ignore[arg-type]


def test_long_error_messages_are_shortened_in_logs(
    mode: Mode, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry log line keeps at most 200 characters of the error message."""
    body = Flaky(TimeoutError("x" * 500))

    with caplog.at_level(logging.WARNING, logger="reliable.retry"):
        mode.decorate(body)()

    (record,) = [r for r in caplog.records if r.name == "reliable.retry"]
    assert record.getMessage().endswith("TimeoutError: " + "x" * 197 + "...")


def test_a_broken_tracing_api_does_not_break_the_call(
    mode: Mode, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If marking the span fails, the retried call still returns its value."""
    from reliable import _retry_run

    def broken() -> Any:
        raise RuntimeError("tracing is broken")

    monkeypatch.setattr(_retry_run.trace, "get_current_span", broken)
    body = Flaky(TimeoutError())

    assert "ok" == mode.decorate(body)()
