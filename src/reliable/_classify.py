"""`reliable.classify` and `reliable.transient`: is this exception worth retrying, and when?

The classifier knows the error shapes of httpx, requests, aiohttp, urllib and the
openai / anthropic SDKs without importing any of them (see `_http_shapes`), the HTTP
statuses that mean "try again", the ``Retry-After`` family of headers, and the error
codes that mean a quota or spend limit is exhausted (permanent until a human acts).
It is pure apart from reading the library clock's wall time to turn a
``Retry-After`` HTTP-date into seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any

from ._errors import ReliableError
from ._http_shapes import (
    body_of,
    connection_error,
    error_codes,
    header,
    headers_of,
    plain,
    request_headers_of,
    status_of,
    tls_setup_error,
    wrapped,
)
from ._internal import _clock

__all__ = ["Classification", "classify", "parse_retry_after", "sdk_retries", "transient"]

TRANSIENT_STATUSES = frozenset({408, 425, 500, 502, 503, 504, 520, 521, 522, 523, 524})
"""Statuses retried as ``"transient"`` (520-524: Cloudflare's "origin unreachable / timed out")."""

QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "enforced_spend_limit_reached",
        "billing_hard_limit_reached",
        "billing_not_active",
    }
)
"""Error codes (or types) that mean the account is out of quota or credit: never retried."""

QUOTA_MESSAGES = ("exceeded your current quota", "credit balance is too low", "spend limit")
"""Phrases of an error body's message that mean the same, for bodies without a code."""

KINDS = ("transient", "rate_limited", "overloaded", "quota_exhausted", "permanent")
"""Every value of `Classification.kind`."""


@dataclass(frozen=True, slots=True)
class Classification:
    """What `reliable.classify` says about an exception.

    Attributes:
        kind: ``"transient"``, ``"rate_limited"``, ``"overloaded"``, ``"quota_exhausted"`` or ``"permanent"``.
        retry: Whether retrying can help.
        wait: Seconds the server asked to wait (``retry-after-ms``, ``retry-after`` seconds or
            HTTP-date), or None.
        status: The HTTP status the exception carries, or None.
        reason: Why, for people: shown in logs, telemetry and give-up notes.

    >>> Classification("rate_limited", True, 2.0, 429, "HTTP 429")
    Classification(kind='rate_limited', retry=True, wait=2.0, status=429, reason='HTTP 429')

    .. versionadded:: 0.1.0
    """

    kind: str
    retry: bool
    wait: float | None
    status: int | None
    reason: str


def classify(exc: BaseException) -> Classification:
    """Classify *exc* for retrying, from its type, HTTP status, headers and error body.

    The rules, first match wins:

    1. a quota or spend limit is exhausted (HTTP 402, or an error code such as openai's
       ``insufficient_quota`` or anthropic's ``enforced_spend_limit_reached``) →
       ``quota_exhausted``, not retried;
    2. a ``x-should-retry: false`` response header → ``permanent``; ``x-should-retry: true``
       turns what rules 3-8 would call ``permanent`` into ``transient``;
    3. HTTP 529 or an ``overloaded_error`` body (also inside an HTTP 200 stream) → ``overloaded``;
    4. HTTP 429 → ``rate_limited``; 408, 425, 500, 502, 503, 504, 520-524 → ``transient``;
       any other status from 400 up → ``permanent``;
    5. an error body without an error status (a stream's error event): ``api_error`` →
       ``transient``, ``rate_limit_error`` → ``rate_limited``;
    6. a certificate or TLS-protocol failure (anywhere in what *exc* wraps) → ``permanent``;
       connection errors and timeouts (builtin, ``socket``, ``ssl``, an `OSError` with
       ``ECONNREFUSED``, ``EHOSTUNREACH`` & co., DNS ``EAI_AGAIN``, and the httpx /
       requests / urllib3 / aiohttp / openai / anthropic shapes) → ``transient``;
    7. an exception that none of the above decides, but that wraps one that rules 1-6
       decide (urllib's ``URLError.reason``, ``raise ... from``, an exception raised while
       handling another, ``.original_exception`` & co.) → that one's classification;
    8. anything else → ``permanent``.

    Args:
        exc: The exception.

    Returns:
        A `Classification`; its *wait* is the server's requested wait, whatever the kind.

    >>> classify(TimeoutError("read timed out")).kind
    'transient'

    .. versionadded:: 0.1.0
    """
    return classify_at(exc, _clock.current().time())


def transient(exc: BaseException) -> bool:
    """Whether `classify` would retry *exc*: the default of ``reliable.retry(on=...)``.

    >>> transient(ConnectionResetError()), transient(ValueError())
    (True, False)

    .. versionadded:: 0.1.0
    """
    return classify_at(exc, _clock.current().time()).retry


def classify_at(exc: BaseException, now: float) -> Classification:
    """`classify` with the wall time *now* (seconds since the epoch) given: pure, and it never raises."""
    try:
        return _classify(exc, now)
    except Exception as error:  # an exotic exception object must not break the retry loop
        return Classification("permanent", False, None, None, f"could not classify {type(exc).__name__}: {error!r}")


_by_type: dict[type[BaseException], Classification] = {}


def known_classification(exc: BaseException) -> Classification | None:
    """The cached classification of a plain exception's type (see `plain`), or None: the retry loop's fast path."""
    known = _by_type.get(type(exc))  # only plain types are cached; an instance may still carry attributes
    if known is None:
        return None
    try:
        if exc.__dict__ or exc.__cause__ is not None or exc.__context__ is not None:
            return None  # the instance half of `plain`; its type half is already known to hold
    except AttributeError:  # pragma: no cover - every BaseException has a __dict__
        return None
    return known


def _classify(exc: BaseException, now: float) -> Classification:
    if plain(exc):
        cls = type(exc)
        known = _by_type.get(cls)
        if known is None:
            known = _classify_shaped(exc, now)
            if len(_by_type) < 1024:
                _by_type[cls] = known
        return known
    return _classify_shaped(exc, now)


def _classify_shaped(exc: BaseException, now: float) -> Classification:
    if not isinstance(exc, Exception):
        return Classification("permanent", False, None, None, f"{type(exc).__name__} is never retried")
    own, by_name = _own(exc, now)
    if own is not None and not by_name:
        return own
    inner = None if isinstance(exc, ReliableError) else _inside(exc, now, own is None)
    if inner is not None:
        return inner
    if own is not None:
        return own
    return Classification("permanent", False, None, None, f"{type(exc).__name__} is not a known transient error")


def _own(exc: BaseException, now: float) -> tuple[Classification | None, bool]:
    """Rules 1-6 applied to *exc* alone; None if none applies. True with a connection error found by rule 6."""
    status = status_of(exc)
    headers = headers_of(exc)
    wait = parse_retry_after(headers, now)
    body = body_of(exc)
    codes, messages = error_codes(exc, body) if (body is not None or status is not None) else (set(), [])
    quota = sorted(codes & QUOTA_CODES)
    if quota or status == 402 or any(p in m for m in messages for p in QUOTA_MESSAGES):
        why = quota[0] if quota else ("HTTP 402" if status == 402 else "a spend-limit or quota message")
        reason = f"quota or spend limit exhausted ({why}): needs a human, not a retry"
        return Classification("quota_exhausted", False, wait, status, reason), False
    kind, reason, by_name = _kind(exc, status, codes)
    should = header(headers, "x-should-retry")
    if should is not None:
        should = should.strip().lower()
        if should == "false":
            return Classification("permanent", False, wait, status, "the server sent x-should-retry: false"), False
        if should == "true" and kind in ("permanent", None):
            return Classification("transient", True, wait, status, "the server sent x-should-retry: true"), False
    if kind is None:
        return None, False
    return Classification(kind, kind != "permanent", wait, status, reason), by_name


def _kind(exc: BaseException, status: int | None, codes: set[str]) -> tuple[str | None, str, bool]:
    """Rules 3-6: the kind and reason, or None; True when rule 6 found a connection error (by type or errno)."""
    if status == 529 or "overloaded_error" in codes:
        return "overloaded", f"server overloaded ({'HTTP 529' if status == 529 else 'overloaded_error'})", False
    if status is not None and status >= 400:
        if status == 429:
            return "rate_limited", "rate limited (HTTP 429)", False
        if status in TRANSIENT_STATUSES:
            return "transient", f"HTTP {status} is transient", False
        return "permanent", f"HTTP {status} is not retried", False
    if "api_error" in codes:
        return "transient", "the server reported an api_error", False
    if "rate_limit_error" in codes:
        return "rate_limited", "the server reported a rate_limit_error", False
    tls = tls_setup_error(exc)
    if tls is not None:
        return "permanent", f"certificate or TLS setup failure ({tls}): retrying cannot fix it", False
    name = connection_error(exc)
    if name is not None:
        return "transient", f"connection error or timeout ({name})", True
    return None, "", False


_MAX_INSIDE = 16
"""Most wrapped exceptions looked at for one classification (chains can be long, attributes can loop)."""


def _inside(exc: BaseException, now: float, undecided: bool) -> Classification | None:
    """Rule 6's certificate check and rule 7: what the exceptions wrapped by *exc* say, nearest first.

    A certificate or TLS-protocol failure anywhere inside wins (httpx, requests and aiohttp wrap
    them in their connection errors). Otherwise, when *exc* itself is *undecided*, the first
    wrapped exception that rules 1-6 decide gives the answer.
    """
    queue = wrapped(exc)
    if not queue:
        return None
    seen = {id(exc)}
    links: list[BaseException] = []
    while queue and len(links) < _MAX_INSIDE:
        inner = queue.pop(0)
        if id(inner) in seen:
            continue
        seen.add(id(inner))
        links.append(inner)
        queue.extend(wrapped(inner))
    outer = type(exc).__name__
    for inner in links:
        tls = tls_setup_error(inner)
        if tls is not None:
            reason = f"certificate or TLS setup failure ({tls}, inside {outer}): retrying cannot fix it"
            return Classification("permanent", False, None, None, reason)
    if not undecided:
        return None
    for inner in links:
        if isinstance(inner, Exception):
            found, _ = _own(inner, now)
            if found is not None:
                return Classification(
                    found.kind, found.retry, found.wait, found.status, f"{found.reason}, inside {outer}"
                )
    return None


def parse_retry_after(headers: Any, now: float) -> float | None:
    """Seconds to wait according to *headers*, or None if they do not say.

    ``retry-after-ms`` (milliseconds) wins over ``retry-after``, which is either
    seconds or an HTTP-date (taken relative to *now*, seconds since the epoch; a date
    in the past means 0). Negative, non-finite and unparseable values are ignored.

    >>> parse_retry_after({"Retry-After": "Sun, 29 Nov 2026 12:00:30 GMT"}, now=1795953600.0)
    30.0
    """
    if headers is None:
        return None
    text = header(headers, "retry-after-ms")
    if text is not None:
        millis = _number(text)
        if millis is not None:
            return millis / 1000.0
    text = header(headers, "retry-after")
    if text is None:
        return None
    seconds = _number(text)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if math.isnan(value) or math.isinf(value) or value < 0:
        return None
    return value


def sdk_retries(exc: BaseException) -> int:
    """How many times an SDK (openai, anthropic: the ``x-stainless-retry-count`` request header) already retried."""
    if plain(exc):
        return 0
    text = header(request_headers_of(exc), "x-stainless-retry-count")
    if text is None:
        return 0
    try:
        count = int(text.strip())
    except ValueError:
        return 0
    return max(count, 0)
