"""Read status, headers and error bodies off the exceptions of HTTP and LLM client libraries.

Nothing here imports httpx, requests, aiohttp, openai or anthropic: each shape is
recognised by its attributes (and, for connection errors, by class names in the
exception's MRO), the way a user would duck-type them.

- httpx ``HTTPStatusError``, requests ``HTTPError``: ``exc.response.status_code`` and
  ``exc.response.headers``; the body only if the response was already read;
- openai / anthropic ``APIStatusError``: ``exc.status_code``, ``exc.response.headers``,
  ``exc.body`` (openai: the inner ``error`` object; anthropic: the whole body), and
  openai's ``exc.code`` / ``exc.type``;
- aiohttp ``ClientResponseError``: ``exc.status`` and ``exc.headers``;
- urllib ``HTTPError`` and others: an int ``exc.code`` or ``exc.status``, ``exc.headers``.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from typing import Any

__all__ = [
    "body_of",
    "connection_error",
    "error_codes",
    "header",
    "headers_of",
    "plain",
    "request_headers_of",
    "status_of",
]

_MAX_BODY = 65_536

_CONNECTION_NAMES = frozenset(
    {
        # httpx / httpcore
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "RemoteProtocolError",
        # openai / anthropic
        "APIConnectionError",
        "APITimeoutError",
        # aiohttp
        "ClientConnectionError",
        "ClientConnectorError",
        "ServerConnectionError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientPayloadError",
        # requests / urllib3
        "ChunkedEncodingError",
        "NewConnectionError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
    }
)
"""Class names that mean a connection failure or a timeout wherever they come from."""

_QUALIFIED = frozenset(
    {("httpx", n) for n in ("ReadError", "WriteError", "CloseError", "NetworkError", "TimeoutException")}
    | {("httpcore", n) for n in ("ReadError", "WriteError", "NetworkError", "TimeoutException")}
    | {("requests", "ConnectionError"), ("requests", "Timeout")}
    | {("urllib3", "ProtocolError"), ("urllib3", "TimeoutError")}
)
"""Generic names that count only when the class comes from that library (root module, class name)."""

_connection_cache: dict[type[BaseException], str | None] = {}


def connection_error(exc: BaseException) -> str | None:
    """The name of the class that makes *exc* a connection error or timeout, or None.

    Builtin `ConnectionError` and `TimeoutError` (``socket.timeout`` and
    ``asyncio.TimeoutError`` are aliases of it), `ssl.SSLError` except certificate
    verification, and the shapes listed in `_CONNECTION_NAMES`.
    """
    cls = type(exc)
    try:
        return _connection_cache[cls]
    except KeyError:
        pass
    found: str | None = None
    if isinstance(exc, ssl.SSLCertVerificationError):
        found = None
    elif isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
        found = cls.__name__
    else:
        for base in cls.__mro__:
            root = base.__module__.partition(".")[0]
            if base.__name__ in _CONNECTION_NAMES or (root, base.__name__) in _QUALIFIED:
                found = base.__name__
                break
    if len(_connection_cache) < 1024:
        _connection_cache[cls] = found
    return found


_SHAPE_ATTRIBUTES = ("status_code", "response", "status", "code", "headers", "body", "request", "type")
_shaped_types: dict[type[BaseException], bool] = {}


def plain(exc: BaseException) -> bool:
    """True when *exc* carries none of the attributes read here (a builtin ``TimeoutError``, say).

    Such an exception classifies by its type alone, so the classifier can cache the result.
    """
    try:
        if exc.__dict__:
            return False
    except AttributeError:  # pragma: no cover - every BaseException has a __dict__
        return False
    cls = type(exc)
    shaped = _shaped_types.get(cls)
    if shaped is None:
        shaped = any(hasattr(cls, name) for name in _SHAPE_ATTRIBUTES)
        if len(_shaped_types) < 1024:
            _shaped_types[cls] = shaped
    return not shaped


def _attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` that also survives properties that raise (httpx's ``.request`` does)."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _int_status(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by *exc*, or None."""
    for candidate in (_attr(exc, "status_code"), _attr(_attr(exc, "response"), "status_code")):
        status = _int_status(candidate)
        if status is not None:
            return status
    for name in ("status", "code"):
        status = _int_status(_attr(exc, name))
        if status is not None:
            return status
    return None


def headers_of(exc: BaseException) -> Any:
    """The response headers carried by *exc* (any mapping-like object), or None."""
    headers = _attr(_attr(exc, "response"), "headers")
    return headers if headers is not None else _attr(exc, "headers")


def request_headers_of(exc: BaseException) -> Any:
    """The headers of the request that failed (``exc.response.request`` or ``exc.request``), or None."""
    for owner in (_attr(exc, "response"), exc):
        headers = _attr(_attr(owner, "request"), "headers")
        if headers is not None:
            return headers
    return None


def header(headers: Any, name: str) -> str | None:
    """The value of header *name* (lower case) in *headers*, looked up case-insensitively, or None."""
    if headers is None:
        return None
    try:
        value = headers.get(name)
        if value is None and isinstance(headers, Mapping):
            value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == name), None)
    except Exception:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if isinstance(value, str) else None


def body_of(exc: BaseException) -> Any:
    """The decoded JSON error body of *exc*: ``exc.body``, else an already-read response's content; or None.

    A response that has not been read is never read here (that could block on the network).
    """
    body = _attr(exc, "body")
    if body is not None:
        return body
    content = _attr(_attr(exc, "response"), "_content")
    if isinstance(content, (bytes, bytearray)) and 0 < len(content) <= _MAX_BODY:
        try:
            return json.loads(content)
        except ValueError:
            return None
    return None


def error_codes(exc: BaseException, body: Any) -> tuple[set[str], list[str]]:
    """The error codes/types (lower case) and messages found on *exc* and in *body*.

    Looks at ``exc.code`` and ``exc.type`` when they are strings (openai), the body's
    ``error.code``, ``error.type`` and ``error.details.error_code`` (openai puts the
    inner ``error`` object in ``exc.body``, anthropic the whole body), and top-level
    ``code``/``type``/``message``.
    """
    codes: set[str] = set()
    messages: list[str] = []
    for name in ("code", "type"):
        value = _attr(exc, name)
        if isinstance(value, str):
            codes.add(value.lower())
    layers: list[Mapping[str, Any]] = []
    if isinstance(body, Mapping):
        layers.append(body)
        inner = body.get("error")
        if isinstance(inner, Mapping):
            layers.append(inner)
            details = inner.get("details")
            if isinstance(details, Mapping):
                layers.append(details)
    for layer in layers:
        for key in ("code", "type", "error_code"):
            value = layer.get(key)
            if isinstance(value, str) and value != "error":
                codes.add(value.lower())
        message = layer.get("message")
        if isinstance(message, str):
            messages.append(message.lower())
    return codes, messages
