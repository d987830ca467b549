"""HTTP-shaped errors for tests: the exception an HTTP client raises for a status, headers and body.

`http_error` builds a real ``httpx.HTTPStatusError`` when httpx is importable, and
otherwise an `HTTPStatusError` of this module with the same attributes
(``response.status_code``, ``response.headers``, ``response.json()``, ``request``),
so code and classifiers that read those attributes see the same thing either way.
The LLM SDK shapes (openai, anthropic) live in ``_sdk_errors``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any, Union

from .._errors import ConfigError

__all__ = ["HTTPStatusError", "Headers", "Request", "Response", "http_error", "make_response"]

RetryAfter = Union[float, int, str, datetime, None]
_KINDS = {
    1: "Informational response",
    2: "Success response",
    3: "Redirect response",
    4: "Client error",
    5: "Server error",
}


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive header map (what ``httpx.Headers`` looks like to a reader)."""

    __slots__ = ("_items",)

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._items = {k.lower(): (k, str(v)) for k, v in (headers or {}).items()}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class Request:
    """The request an `HTTPStatusError` was raised for (the attributes of ``httpx.Request`` tests read)."""

    def __init__(self, method: str, url: str, headers: Mapping[str, str] | None = None) -> None:
        self.method = method
        self.url = url
        self.headers = Headers(headers)

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {self.url!r})>"


class Response:
    """A response with a status, headers and a body (the attributes of ``httpx.Response`` tests read)."""

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, request: Request) -> None:
        self.status_code = status_code
        self.headers = Headers(headers)
        self._content = content  # where httpx keeps a body it has read (classifiers look there)
        self.request = request

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def reason_phrase(self) -> str:
        return _reason(self.status_code)

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    def json(self) -> Any:
        """The body decoded as JSON; raises `ValueError` when it is not JSON, as httpx does."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"


class HTTPStatusError(Exception):
    """What `http_error` raises when httpx is not installed: the same attributes as ``httpx.HTTPStatusError``.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, *, request: Request, response: Response) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


def http_error(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    retry_after: RetryAfter = None,
    retry_after_ms: float | None = None,
    method: str = "GET",
    url: str = "https://api.example.com/v1/items",
) -> Exception:
    """The exception an HTTP client raises for a response with *status*, *headers* and *body*.

    Args:
        status: The HTTP status, 100 to 599.
        headers: Response headers (case-insensitive when read).
        body: The response body: a dict or list (sent as JSON), ``str``, ``bytes`` or None.
        retry_after: Sets the ``retry-after`` header: seconds, or a `datetime` (sent as an HTTP-date),
            or a string sent as is.
        retry_after_ms: Sets the ``retry-after-ms`` header (OpenAI's millisecond form).
        method: The request method.
        url: The request URL.

    Returns:
        An ``httpx.HTTPStatusError`` when httpx is importable, else an `HTTPStatusError` of
        ``reliable.testing`` with the same attributes.

    Raises:
        ConfigError: *status* is not an HTTP status.

    >>> exc = http_error(429, retry_after=2, body={"error": {"code": "rate_limit_exceeded"}})
    >>> exc.response.status_code, exc.response.headers["Retry-After"], exc.response.json()["error"]["code"]
    (429, '2', 'rate_limit_exceeded')

    .. versionadded:: 0.1.0
    """
    request, response = make_response(
        status,
        headers=headers,
        body=body,
        retry_after=retry_after,
        retry_after_ms=retry_after_ms,
        method=method,
        url=url,
    )
    kind = _KINDS[status // 100]
    message = f"{kind} '{status} {_reason(status)}' for url '{url}' (injected by reliable.testing)"
    httpx = _httpx()
    error: Exception
    if httpx is not None:
        error = httpx.HTTPStatusError(message, request=request, response=response)
    else:
        error = HTTPStatusError(message, request=request, response=response)
    return error


def make_response(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    retry_after: RetryAfter = None,
    retry_after_ms: float | None = None,
    method: str = "GET",
    url: str = "https://api.example.com/v1/items",
) -> tuple[Any, Any]:
    """A ``(request, response)`` pair: httpx objects when httpx is importable, else this module's twins."""
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        msg = f"status={status!r} is not an HTTP status; pass an int from 100 to 599, e.g. 429 or 503"
        raise ConfigError(msg, parameter="status", value=status)
    merged = dict(headers or {})
    if retry_after is not None:
        merged["retry-after"] = _retry_after_value(retry_after)
    if retry_after_ms is not None:
        merged["retry-after-ms"] = _number(retry_after_ms)
    content, content_type = _encode_body(body)
    if content_type is not None and not any(k.lower() == "content-type" for k in merged):
        merged["content-type"] = content_type
    httpx = _httpx()
    if httpx is not None:
        request = httpx.Request(method, url)
        return request, httpx.Response(status, headers=merged, content=content, request=request)
    own_request = Request(method, url)
    return own_request, Response(status, merged, content, own_request)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        return None
    return httpx


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _retry_after_value(value: float | int | str | datetime) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return format_datetime(moment.astimezone(timezone.utc), usegmt=True)
    if isinstance(value, str):
        return value
    return _number(value)


def _encode_body(body: Any) -> tuple[bytes, str | None]:
    if body is None:
        return b"", None
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), "application/json"
