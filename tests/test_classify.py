"""`reliable.classify` and `reliable.transient`: HTTP statuses, provider bodies, Retry-After, connection errors."""

from __future__ import annotations

import dataclasses
import email.message
import json
import ssl
import urllib.error
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import reliable
from reliable._classify import KINDS, parse_retry_after, sdk_retries
from reliable.testing import FakeClock, installed

CASES = json.loads((Path(__file__).parent / "data" / "provider-errors.json").read_text())["cases"]
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc).timestamp()
"""The fixed wall time the HTTP-date rows are read against."""


@pytest.fixture(autouse=True)
def fixed_now() -> Iterator[FakeClock]:
    """Every test here runs at NOW on a fake clock."""
    with installed(FakeClock(start=NOW)) as clock:
        yield clock


# -- exceptions shaped like the client libraries, built locally --------------------------------------------------


class FakeRequest:
    def __init__(self, headers: dict[str, str] | None = None) -> None:
        self.headers = headers or {}


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str], request: FakeRequest | None = None) -> None:
        self.status_code = status
        self.headers = headers
        self.request = request or FakeRequest()


class APIStatusError(Exception):
    """The shape of openai's and anthropic's ``APIStatusError`` (Stainless SDKs)."""

    def __init__(self, message: str, *, response: FakeResponse, body: Any) -> None:
        super().__init__(message)
        self.response = response
        self.status_code = response.status_code
        self.body = body
        inner = body if isinstance(body, dict) else {}
        self.code = inner.get("code")
        self.type = inner.get("type")


class APIConnectionError(Exception):
    """openai / anthropic: no response, a request."""

    def __init__(self, request: FakeRequest | None = None) -> None:
        super().__init__("Connection error.")
        self.request = request or FakeRequest()


class APITimeoutError(APIConnectionError):
    pass


class ClientResponseError(Exception):
    """aiohttp's shape: ``.status`` and ``.headers``, no body."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}")
        self.status = status
        self.headers = headers


class ClientConnectionError(Exception):
    pass


class ServerDisconnectedError(ClientConnectionError):
    pass


class ServerTimeoutError(ClientConnectionError, TimeoutError):
    pass


def _named(name: str, module: str, base: type[Exception] = Exception) -> type[Exception]:
    cls = type(name, (base,), {})
    cls.__module__ = module
    return cls


def sdk_error(case: dict[str, Any]) -> APIStatusError:
    """The exception the openai (inner error object as body) or anthropic (whole body) SDK raises for *case*."""
    body = case["body"]
    if case["name"].startswith("openai") and isinstance(body, dict):
        body = body["error"]
    return APIStatusError("error", response=FakeResponse(case["status"], dict(case["headers"])), body=body)


def httpx_error(case: dict[str, Any]) -> httpx.HTTPStatusError:
    """A real httpx ``HTTPStatusError`` for *case*, its JSON body already read."""
    request = httpx.Request("POST", "https://api.example.com/v1/x")
    response = httpx.Response(case["status"], headers=case["headers"], json=case["body"], request=request)
    return httpx.HTTPStatusError("error", request=request, response=response)


def expected_wait(case: dict[str, Any]) -> float | None:
    expect = case["expect"]
    if "wait_s" in expect:
        return float(expect["wait_s"])
    if expect.get("wait") == "until that date":
        return email.utils.parsedate_to_datetime(case["headers"]["retry-after"]).timestamp() - NOW
    return None


# -- the provider-errors.json rows -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [sdk_error, httpx_error], ids=["sdk-shape", "httpx"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_provider_error_rows(case: dict[str, Any], make: Any) -> None:
    """Every row of provider-errors.json gets its expected class, retry decision and server wait."""
    expect = case["expect"]
    retry = expect["retry"] if isinstance(expect["retry"], bool) else True  # the SSE row: retryable before item 1

    got = reliable.classify(make(case))

    assert (expect["class"], retry, expected_wait(case), case["status"]) == (
        got.kind,
        got.retry,
        got.wait,
        got.status,
    )


def test_data_file_is_the_shared_one() -> None:
    """tests/data/provider-errors.json covers every kind the classifier can return except none."""
    kinds = {c["expect"]["class"] for c in CASES}

    assert set(KINDS) == kinds


# -- statuses and headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (408, "transient"),
        (425, "transient"),
        (429, "rate_limited"),
        (500, "transient"),
        (502, "transient"),
        (503, "transient"),
        (504, "transient"),
        (522, "transient"),
        (529, "overloaded"),
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (409, "permanent"),
        (422, "permanent"),
        (501, "permanent"),
        (402, "quota_exhausted"),
    ],
)
def test_status_table(status: int, kind: str) -> None:
    """Each HTTP status gets the documented kind, whichever attribute carries it."""
    shapes = [
        ClientResponseError(status),
        urllib.error.HTTPError("https://x", status, "msg", email.message.Message(), None),
        APIStatusError("e", response=FakeResponse(status, {}), body=None),
        httpx_error({"status": status, "headers": {}, "body": None}),
    ]

    kinds = [reliable.classify(exc).kind for exc in shapes]

    assert [kind] * len(shapes) == kinds


@pytest.mark.parametrize(("value", "retry"), [("true", True), ("TRUE", True), ("false", False), ("maybe", False)])
def test_x_should_retry_overrides_a_permanent_status(value: str, retry: bool) -> None:
    """x-should-retry: true makes a 409 retryable, false or junk leaves it permanent."""
    exc = ClientResponseError(409, {"X-Should-Retry": value})

    assert retry == reliable.transient(exc)


def test_x_should_retry_false_overrides_a_transient_status() -> None:
    """x-should-retry: false stops even a 529."""
    exc = ClientResponseError(529, {"x-should-retry": "false"})

    got = reliable.classify(exc)

    assert ("permanent", False) == (got.kind, got.retry)


def test_x_should_retry_true_keeps_the_kind() -> None:
    """x-should-retry: true on a 429 stays rate_limited."""
    got = reliable.classify(ClientResponseError(429, {"x-should-retry": "true"}))

    assert ("rate_limited", True) == (got.kind, got.retry)


def test_quota_wins_over_x_should_retry() -> None:
    """An exhausted quota is not retried even when the server says x-should-retry: true."""
    exc = APIStatusError(
        "e", response=FakeResponse(429, {"x-should-retry": "true"}), body={"code": "insufficient_quota"}
    )

    assert "quota_exhausted" == reliable.classify(exc).kind


@pytest.mark.parametrize(
    "code",
    [
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "enforced_spend_limit_reached",
    ],
)
def test_quota_codes_are_not_retried(code: str) -> None:
    """Each quota/spend-limit code on a 429 (as openai's code, or anthropic's details.error_code) is quota_exhausted."""
    openai = APIStatusError("e", response=FakeResponse(429, {"retry-after": "1"}), body={"code": code, "type": "x"})
    anthropic = APIStatusError(
        "e",
        response=FakeResponse(429, {}),
        body={"type": "error", "error": {"type": "rate_limit_error", "details": {"error_code": code}}},
    )

    got = [reliable.classify(openai), reliable.classify(anthropic)]

    assert [("quota_exhausted", False)] * 2 == [(c.kind, c.retry) for c in got]


def test_quota_message_without_a_code() -> None:
    """A 429 whose message says the spend limit is reached is quota_exhausted even without a known code."""
    exc = APIStatusError(
        "e", response=FakeResponse(429, {}), body={"type": "error", "error": {"message": "Spend limit reached"}}
    )

    assert "quota_exhausted" == reliable.classify(exc).kind


def test_rate_limit_with_quota_word_in_a_limit_name_is_still_retried() -> None:
    """A per-minute 'quota' rate limit (Google-style) is rate_limited, not exhausted."""
    exc = APIStatusError(
        "e",
        response=FakeResponse(429, {}),
        body={"error": {"code": 429, "message": "Quota exceeded for quota metric 'Requests' per minute"}},
    )

    assert ("rate_limited", True) == (reliable.classify(exc).kind, reliable.classify(exc).retry)


def test_stream_error_event_with_api_error_is_transient() -> None:
    """An error event inside an HTTP 200 stream with type api_error is transient; an unknown type is permanent."""
    api = APIStatusError("e", response=FakeResponse(200, {}), body={"type": "error", "error": {"type": "api_error"}})
    rate = APIStatusError(
        "e", response=FakeResponse(200, {}), body={"type": "error", "error": {"type": "rate_limit_error"}}
    )
    other = APIStatusError(
        "e", response=FakeResponse(200, {}), body={"type": "error", "error": {"type": "invalid_request_error"}}
    )

    kinds = [reliable.classify(e).kind for e in (api, rate, other)]

    assert ["transient", "rate_limited", "permanent"] == kinds


# -- Retry-After ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after": "20"}, 20.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "Sun, 29 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Sun, 29 Nov 2026 11:59:00 GMT"}, 0.0),
        ({"retry-after": "Sun, 29 Nov 2026 12:01:00 -0000"}, 60.0),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "junk", "retry-after": "4"}, 4.0),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], wait: float | None) -> None:
    """retry-after-ms wins over retry-after; seconds and HTTP-dates are read relative to now; junk is ignored."""
    assert wait == parse_retry_after(headers, NOW)


def test_retry_after_read_from_every_header_carrier() -> None:
    """The wait comes from exc.response.headers (httpx, SDKs), exc.headers (aiohttp, urllib) alike."""
    message = email.message.Message()
    message["Retry-After"] = "7"
    shapes = [
        ClientResponseError(503, {"Retry-After": "7"}),
        urllib.error.HTTPError("https://x", 503, "msg", message, None),
        httpx_error({"status": 503, "headers": {"Retry-After": "7"}, "body": None}),
    ]

    assert [7.0] * 3 == [reliable.classify(exc).wait for exc in shapes]


def test_http_date_uses_the_library_clock(fixed_now: FakeClock) -> None:
    """An HTTP-date wait shrinks as the library clock moves."""
    exc = ClientResponseError(503, {"retry-after": "Sun, 29 Nov 2026 12:00:30 GMT"})
    fixed_now.advance(10)

    assert 20.0 == reliable.classify(exc).wait


# -- connection errors and timeouts -------------------------------------------------------------------------------

REQUESTS_CONNECTION = _named("ConnectionError", "requests.exceptions", OSError)
REQUESTS_TIMEOUT = _named("Timeout", "requests.exceptions", OSError)
USER_TIMEOUT = _named("Timeout", "myapp.errors")


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(),
        ConnectionRefusedError(),
        BrokenPipeError(),
        TimeoutError(),
        ssl.SSLEOFError(),
        httpx.ConnectError("x"),
        httpx.ReadTimeout("x"),
        httpx.RemoteProtocolError("x"),
        httpx.ReadError("x"),
        APIConnectionError(),
        APITimeoutError(),
        ClientConnectionError(),
        ServerDisconnectedError(),
        ServerTimeoutError(),
        REQUESTS_CONNECTION(),
        REQUESTS_TIMEOUT(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_connection_errors_are_transient(exc: Exception) -> None:
    """Connection errors and timeouts of the stdlib and the client libraries are transient."""
    got = reliable.classify(exc)

    assert ("transient", True) == (got.kind, got.retry)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("k"),
        OSError("disk"),
        ssl.SSLCertVerificationError(),
        httpx.LocalProtocolError("x"),
        httpx.UnsupportedProtocol("x"),
        USER_TIMEOUT(),
        reliable.ConfigError("bad"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_permanent(exc: Exception) -> None:
    """Programming errors, certificate errors and look-alike names from other modules are not retried."""
    assert ("permanent", False) == (reliable.classify(exc).kind, reliable.transient(exc))


def test_base_exceptions_are_never_retried() -> None:
    """KeyboardInterrupt and friends are permanent, with a reason."""
    got = reliable.classify(KeyboardInterrupt())

    assert (False, "KeyboardInterrupt is never retried") == (got.retry, got.reason)


def test_odd_attributes_are_ignored() -> None:
    """A non-HTTP .code, a bool status, or headers that raise do not confuse the classifier."""

    class Weird(Exception):
        code = "E123"
        status = True

        @property
        def headers(self) -> Any:
            raise RuntimeError("no headers")

    got = reliable.classify(Weird())

    assert ("permanent", None, None) == (got.kind, got.status, got.wait)


def test_classification_is_a_frozen_slotted_value() -> None:
    """Classification cannot be changed and has no __dict__."""
    got = reliable.classify(TimeoutError())

    with pytest.raises(dataclasses.FrozenInstanceError):
        got.kind = "permanent"  # type: ignore[misc]
    assert not hasattr(got, "__dict__")


def test_reason_says_why() -> None:
    """The reason names the status or the error."""
    reasons = [
        reliable.classify(ClientResponseError(503)).reason,
        reliable.classify(ClientResponseError(404)).reason,
        reliable.classify(httpx.ConnectError("x")).reason,
    ]

    assert ["HTTP 503 is transient", "HTTP 404 is not retried", "connection error or timeout (ConnectError)"] == reasons


# -- retries inside the SDK ---------------------------------------------------------------------------------------


def test_sdk_retry_count_from_the_response_request() -> None:
    """x-stainless-retry-count on the failed request (exc.response.request.headers) is read."""
    response = FakeResponse(503, {}, FakeRequest({"x-stainless-retry-count": "2"}))
    exc = APIStatusError("e", response=response, body=None)

    assert 2 == sdk_retries(exc)


def test_sdk_retry_count_from_the_exception_request() -> None:
    """APIConnectionError carries the request itself (exc.request.headers); junk counts as 0."""
    counts = [
        sdk_retries(APIConnectionError(FakeRequest({"X-Stainless-Retry-Count": "3"}))),
        sdk_retries(APIConnectionError(FakeRequest({"x-stainless-retry-count": "x"}))),
        sdk_retries(ValueError()),
    ]

    assert [3, 0, 0] == counts


def test_sdk_retry_count_from_a_real_httpx_request() -> None:
    """httpx.Request headers work too."""
    request = httpx.Request("GET", "https://x", headers={"x-stainless-retry-count": "1"})
    exc = httpx.HTTPStatusError("e", request=request, response=httpx.Response(503, request=request))

    assert 1 == sdk_retries(exc)


def test_an_exception_that_breaks_inspection_is_permanent() -> None:
    """If even looking at the exception raises, the classifier says permanent instead of raising."""

    class Hostile(Exception):
        @property
        def __dict__(self) -> Any:  # type: ignore[override]
            raise RuntimeError("no")

    got = reliable.classify(Hostile())

    assert ("permanent", False) == (got.kind, got.retry)
    assert got.reason.startswith("could not classify Hostile")


def test_header_edge_cases() -> None:
    """Byte values are decoded; a headers object whose get() raises is ignored; junk bodies are ignored."""

    class Raising(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("no")

    response = httpx.Response(503, content=b"not json", request=httpx.Request("GET", "https://x"))
    junk_body = httpx.HTTPStatusError("e", request=response.request, response=response)

    assert 5.0 == parse_retry_after({"retry-after": b"5"}, NOW)
    assert None is parse_retry_after(Raising({"retry-after": "5"}), NOW)
    assert ("transient", None) == (reliable.classify(junk_body).kind, reliable.classify(junk_body).wait)


def test_caches_stay_bounded_with_many_exception_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classifying thousands of distinct exception types keeps the per-type caches bounded and the answers right."""
    from reliable import _classify, _http_shapes

    monkeypatch.setattr(_classify, "_by_type", {})
    monkeypatch.setattr(_http_shapes, "_shaped_types", {})
    monkeypatch.setattr(_http_shapes, "_connection_cache", {})

    kinds = {reliable.classify(type(f"Dynamic{i}", (TimeoutError,), {})()).kind for i in range(1100)}

    assert {"transient"} == kinds
    assert 1024 >= max(len(_classify._by_type), len(_http_shapes._shaped_types), len(_http_shapes._connection_cache))
