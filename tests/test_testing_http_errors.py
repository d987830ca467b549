"""HTTP- and SDK-shaped errors of reliable.testing: their attributes, and that reliable.classify reads them right."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import reliable
from reliable import ConfigError
from reliable.testing import (
    APIConnectionError,
    APIStatusError,
    HTTPStatusError,
    api_connection_error,
    api_error,
    http_error,
)

CASES = [
    case
    for case in json.loads((Path(__file__).parent / "data" / "provider-errors.json").read_text())["cases"]
    if case["status"] != 200  # an SSE error event inside a 200 stream is not an HTTP error
]


@pytest.fixture
def no_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import httpx` fail, as on a machine without httpx."""
    monkeypatch.setitem(sys.modules, "httpx", None)


def test_http_error_is_a_real_httpx_error() -> None:
    """With httpx installed, http_error() is an httpx.HTTPStatusError with the status, headers, body and request."""
    exc = http_error(503, headers={"X-Trace": "abc"}, body={"error": "busy"}, method="POST", url="https://x.test/a")

    assert isinstance(exc, httpx.HTTPStatusError)
    assert (503, "abc", {"error": "busy"}) == (
        exc.response.status_code,
        exc.response.headers["x-trace"],
        exc.response.json(),
    )
    assert ("POST", "https://x.test/a") == (exc.request.method, str(exc.request.url))
    assert "503 Service Unavailable" in str(exc)


def test_http_error_without_httpx_has_the_same_attributes(no_httpx: None) -> None:
    """Without httpx, http_error() builds reliable.testing.HTTPStatusError with the same attributes."""
    exc = http_error(429, retry_after=3, body={"error": {"code": "rate_limit_exceeded"}})

    assert isinstance(exc, HTTPStatusError)
    assert (429, "3", "rate_limit_exceeded") == (
        exc.response.status_code,
        exc.response.headers["Retry-After"],
        exc.response.json()["error"]["code"],
    )
    assert ("GET", True, "Too Many Requests") == (exc.request.method, exc.response.is_error, exc.response.reason_phrase)
    assert "retry-after" in exc.response.headers
    assert 2 == len(exc.response.headers)
    assert "Response [429" in repr(exc.response)
    assert "Request('GET'" in repr(exc.request)
    assert "Headers(" in repr(exc.response.headers)


@pytest.mark.parametrize(
    ("body", "text", "content_type"),
    [
        ({"a": 1}, '{"a": 1}', "application/json"),
        ("plain", "plain", "text/plain; charset=utf-8"),
        (b"\x00raw", "\x00raw", "application/octet-stream"),
        (None, "", None),
    ],
)
@pytest.mark.parametrize("have_httpx", [True, False])
def test_body_forms(
    body: Any, text: str, content_type: str | None, have_httpx: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies may be JSON-able, str, bytes or None; the content type follows, with or without httpx."""
    if not have_httpx:
        monkeypatch.setitem(sys.modules, "httpx", None)

    response = http_error(500, body=body).response  # type: ignore[attr-defined]

    assert (text, content_type) == (response.text, response.headers.get("content-type"))


def test_retry_after_forms() -> None:
    """retry_after takes seconds, a datetime (sent as an HTTP-date) or a string; retry_after_ms sets the ms header."""
    moment = datetime(2026, 11, 29, 12, 0, 30, tzinfo=timezone.utc)

    headers = [
        http_error(429, retry_after=2.0).response.headers,  # type: ignore[attr-defined]
        http_error(429, retry_after=0.5, retry_after_ms=1500).response.headers,  # type: ignore[attr-defined]
        http_error(503, retry_after=moment).response.headers,  # type: ignore[attr-defined]
        http_error(503, retry_after=moment.replace(tzinfo=None)).response.headers,  # type: ignore[attr-defined]
        http_error(503, retry_after="Sun, 29 Nov 2026 12:00:30 GMT").response.headers,  # type: ignore[attr-defined]
    ]

    assert [
        "2",
        "0.5",
        "Sun, 29 Nov 2026 12:00:30 GMT",
        "Sun, 29 Nov 2026 12:00:30 GMT",
        "Sun, 29 Nov 2026 12:00:30 GMT",
    ] == [h["retry-after"] for h in headers]
    assert "1500" == headers[1]["retry-after-ms"]


@pytest.mark.parametrize("status", [99, 600, "429", True, 429.0])
def test_bad_status_is_a_config_error(status: Any) -> None:
    """A status that is not an int from 100 to 599 is a ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match="status="):
        http_error(status)


@pytest.mark.parametrize(
    ("provider", "status", "name"),
    [
        ("openai", 400, "BadRequestError"),
        ("openai", 401, "AuthenticationError"),
        ("openai", 429, "RateLimitError"),
        ("openai", 500, "InternalServerError"),
        ("openai", 503, "InternalServerError"),
        ("openai", 418, "APIStatusError"),
        ("anthropic", 413, "RequestTooLargeError"),
        ("anthropic", 429, "RateLimitError"),
        ("anthropic", 529, "OverloadedError"),
    ],
)
def test_api_error_class_names_follow_the_sdks(provider: Any, status: int, name: str) -> None:
    """api_error() picks the SDK's class name for the status; all are APIStatusError with status_code and response."""
    exc = api_error(status, provider=provider)

    assert (name, status, status) == (type(exc).__name__, exc.status_code, exc.response.status_code)
    assert isinstance(exc, APIStatusError)
    assert f"reliable.testing.{provider}" == type(exc).__module__
    assert "APIStatusError" in [c.__name__ for c in type(exc).__mro__]
    assert exc.request is exc.response.request
    assert str(exc).startswith(f"Error code: {status} - ")


def test_api_error_classes_are_stable() -> None:
    """Two errors of one provider and status share one class; providers do not share classes."""
    assert type(api_error(429)) is type(api_error(429))
    assert type(api_error(429)) is not type(api_error(429, provider="anthropic"))


def test_openai_body_is_the_inner_error() -> None:
    """As in the openai SDK, .body is the inner `error` object, and .code/.type/.param come from it."""
    exc = api_error(429, code="insufficient_quota")

    assert ("insufficient_quota", "insufficient_quota", None) == (exc.code, exc.type, exc.param)
    assert exc.body == exc.response.json()["error"]


def test_anthropic_body_is_the_whole_body() -> None:
    """As in the anthropic SDK, .body is the whole JSON body; code= goes under error.details.error_code."""
    exc = api_error(429, provider="anthropic", code="enforced_spend_limit_reached")

    assert {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "HTTP 429",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
    } == exc.body


def test_api_error_custom_message_headers_and_body() -> None:
    """message=, headers=, retry_after_ms= and body= override the defaults."""
    exc = api_error(
        503, headers={"x-should-retry": "false"}, retry_after_ms=250, body={"error": {"message": "x"}}, message="m"
    )

    assert ("m", "false", "250", {"message": "x"}) == (
        str(exc),
        exc.response.headers["x-should-retry"],
        exc.response.headers["retry-after-ms"],
        exc.body,
    )


def test_connection_errors() -> None:
    """api_connection_error() gives APIConnectionError, or APITimeoutError (a subclass) with timeout=True."""
    plain, timeout = api_connection_error(), api_connection_error(provider="anthropic", timeout=True)

    assert ("APIConnectionError", "Connection error.") == (type(plain).__name__, str(plain))
    assert ("APITimeoutError", "Request timed out.") == (type(timeout).__name__, str(timeout))
    assert isinstance(timeout, APIConnectionError)
    assert type(timeout) is type(api_connection_error(provider="anthropic", timeout=True))
    assert "APIConnectionError" in [c.__name__ for c in type(timeout).__mro__]
    assert timeout.body is None
    assert "anthropic" in str(timeout.request.url)


def test_unknown_provider_is_a_config_error() -> None:
    """provider= must be openai or anthropic."""
    with pytest.raises(ConfigError, match="provider='google'"):
        api_error(429, provider="google")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="provider='google'"):
        api_connection_error(provider="google")  # type: ignore[arg-type]


def _classify() -> Any:
    classify = getattr(reliable, "classify", None)
    if classify is None:  # pragma: no cover - until reliable.classify lands
        pytest.skip("reliable.classify is not available yet")
    return classify


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("shape", ["httpx", "no-httpx", "sdk"])
def test_classify_agrees_with_provider_errors(
    case: dict[str, Any], shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every real provider error response, built by http_error or api_error, is classified as the data expects."""
    classify = _classify()
    if shape == "no-httpx":
        monkeypatch.setitem(sys.modules, "httpx", None)
    if shape == "sdk":
        provider = "anthropic" if case["name"].startswith("anthropic") else "openai"
        exc = api_error(case["status"], provider=provider, headers=case["headers"], body=case["body"])
    else:
        exc = http_error(case["status"], headers=case["headers"], body=case["body"])

    result = classify(exc)

    expected = case["expect"]
    assert (expected["class"], expected["retry"]) == (result.kind, result.retry)
    if "wait_s" in expected:
        assert expected["wait_s"] == result.wait


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (lambda: api_error(429, code="insufficient_quota"), "quota_exhausted"),
        (lambda: api_error(429, provider="anthropic", code="enforced_spend_limit_reached"), "quota_exhausted"),
        (lambda: api_error(429, retry_after=2), "rate_limited"),
        (lambda: api_error(529, provider="anthropic"), "overloaded"),
        (lambda: api_error(500), "transient"),
        (lambda: api_error(401), "permanent"),
        (lambda: api_connection_error(timeout=True), "transient"),
        (lambda: api_connection_error(), "transient"),
    ],
)
def test_classify_agrees_with_default_bodies(exc: Any, kind: str) -> None:
    """The default bodies api_error() writes are classified as the real ones are."""
    classify = _classify()

    assert kind == classify(exc()).kind
