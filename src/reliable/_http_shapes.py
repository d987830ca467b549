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

Connection errors are often wrapped: urllib's ``URLError`` keeps the socket error in
``.reason``, urllib3's ``MaxRetryError`` the ``NewConnectionError`` in ``.reason`` (and
requests raises its ``ConnectionError`` while handling that), httpx raises ``from`` the
httpcore error, which was raised while handling the `ssl` or socket error. `wrapped`
lists what one exception carries, so the classifier can look inside.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
from collections.abc import Mapping
from typing import Any

__all__ = [
    "body_of",
    "connection_error",
    "tls_setup_error",
    "wrapped",
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

_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNREFUSED",
        "ECONNRESET",
        "ECONNABORTED",
        "EPIPE",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "EHOSTDOWN",
        "ENETUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "WSAECONNREFUSED",
        "WSAECONNRESET",
        "WSAECONNABORTED",
        "WSAETIMEDOUT",
        "WSAEHOSTUNREACH",
        "WSAEHOSTDOWN",
        "WSAENETUNREACH",
        "WSAENETDOWN",
        "WSAENETRESET",
    )
    if hasattr(errno, name)
)
"""``OSError.errno`` values of a refused, reset, timed-out or unreachable connection.

Python turns most of them into `ConnectionError` / `TimeoutError` subclasses itself, but
not ``EHOSTUNREACH``, ``ENETUNREACH`` & co., nor an `OSError` subclass built with one."""

_EAI_AGAIN = getattr(socket, "EAI_AGAIN", None)
"""`socket.gaierror` code of "temporary failure in name resolution" (other DNS failures are permanent)."""

_TLS_SETUP_NAMES = frozenset({"SSLCertVerificationError", "CertificateError", "ClientConnectorCertificateError"})
"""Class names of certificate failures (`ssl`, aiohttp): permanent until someone fixes the certificate."""

_TLS_SETUP_REASONS = frozenset(
    {
        "CERTIFICATE_VERIFY_FAILED",
        "WRONG_VERSION_NUMBER",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    }
)
"""`ssl.SSLError.reason` values that mean a certificate or protocol mismatch, not a flaky connection."""

_connection_cache: dict[type[BaseException], str | None] = {}


def connection_error(exc: BaseException) -> str | None:
    """The name of the class that makes *exc* a connection error or timeout, or None.

    Builtin `ConnectionError` and `TimeoutError` (``socket.timeout`` and
    ``asyncio.TimeoutError`` are aliases of it), `ssl.SSLError`, an `OSError` whose
    ``errno`` is in `_TRANSIENT_ERRNOS`, `socket.gaierror` ``EAI_AGAIN``, and the shapes
    listed in `_CONNECTION_NAMES`. Certificate and TLS-protocol failures match too: ask
    `tls_setup_error` first (the classifier does).
    """
    cls = type(exc)
    try:
        found = _connection_cache[cls]
    except KeyError:
        found = _connection_class(cls)
        if len(_connection_cache) < 1024:
            _connection_cache[cls] = found
    if found is None and isinstance(exc, OSError) and exc.errno is not None:
        if isinstance(exc, socket.gaierror):
            return f"{cls.__name__} EAI_AGAIN" if exc.errno == _EAI_AGAIN else None
        if exc.errno in _TRANSIENT_ERRNOS:
            return f"{cls.__name__} {errno.errorcode.get(exc.errno, exc.errno)}"
    return found


def _connection_class(cls: type[BaseException]) -> str | None:
    if issubclass(cls, (ConnectionError, TimeoutError, ssl.SSLError)):
        return cls.__name__
    for base in cls.__mro__:
        root = base.__module__.partition(".")[0]
        if base.__name__ in _CONNECTION_NAMES or (root, base.__name__) in _QUALIFIED:
            return base.__name__
    return None


def tls_setup_error(exc: BaseException) -> str | None:
    """What makes *exc* a certificate or TLS-protocol failure (retrying cannot fix those), or None."""
    for base in type(exc).__mro__:
        if base.__name__ in _TLS_SETUP_NAMES:
            return base.__name__
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)
        if isinstance(reason, str) and reason in _TLS_SETUP_REASONS:
            return f"{type(exc).__name__} {reason}"
    return None


_WRAPPED_ATTRIBUTES = ("reason", "original_exception", "orig", "inner_exception", "os_error")
"""Attributes that hold the exception another one wraps: urllib ``URLError.reason``, urllib3
``MaxRetryError.reason``, PyMySQL ``original_exception``, SQLAlchemy ``orig``, Azure
``inner_exception``, aiohttp ``os_error``."""

_HANDLER_BUGS = (AssertionError, AttributeError, ImportError, LookupError, NameError, TypeError, ValueError)
"""Raised while handling another exception, these are taken as a bug in the handler, not a wrapper of it."""


def wrapped(exc: BaseException) -> list[BaseException]:
    """The exceptions *exc* directly wraps, nearest first: `_WRAPPED_ATTRIBUTES`, ``__cause__``, ``__context__``.

    The implicit ``__context__`` ("during handling of the above exception...") counts
    unless it was suppressed (``raise ... from``) or *exc* is one of `_HANDLER_BUGS`: a
    ``KeyError`` raised while handling a timeout is a bug to see, not a timeout.
    """
    found: list[BaseException] = []
    for name in _WRAPPED_ATTRIBUTES:
        inner = _attr(exc, name)
        if isinstance(inner, BaseException) and inner is not exc:
            found.append(inner)
    cause = exc.__cause__
    if cause is not None:
        found.append(cause)
    context = exc.__context__
    if context is not None and not exc.__suppress_context__ and not isinstance(exc, _HANDLER_BUGS):
        found.append(context)
    return found


_SHAPE_ATTRIBUTES = (
    "status_code",
    "response",
    "status",
    "code",
    "headers",
    "body",
    "request",
    "type",
    *_WRAPPED_ATTRIBUTES,
)
_shaped_types: dict[type[BaseException], bool] = {}


def plain(exc: BaseException) -> bool:
    """True when *exc* classifies by its type alone: a builtin ``TimeoutError``, say.

    That is: no instance attributes, nothing chained (``__cause__``, ``__context__``), and a
    class without the attributes read here. An `OSError` that is not already a
    `ConnectionError` or `TimeoutError` is never plain: its ``errno`` decides.
    """
    try:
        if exc.__dict__ or exc.__cause__ is not None or exc.__context__ is not None:
            return False
    except AttributeError:  # pragma: no cover - every BaseException has a __dict__
        return False
    cls = type(exc)
    shaped = _shaped_types.get(cls)
    if shaped is None:
        shaped = any(hasattr(cls, name) for name in _SHAPE_ATTRIBUTES) or (
            issubclass(cls, OSError) and not issubclass(cls, (ConnectionError, TimeoutError))
        )
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
