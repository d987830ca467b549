"""`reliable.classify` on wrapped errors: urllib's URLError, chained exceptions, and the requests/urllib3/httpx/aiohttp
wrapping shapes (built here as look-alikes, nothing imported), plus errno- and TLS-based rules."""

from __future__ import annotations

import email.message
import errno
import json
import socket
import ssl
import urllib.error
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import reliable
from reliable.testing import FakeClock, installed

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc).timestamp()
CASES = json.loads((Path(__file__).parent / "data" / "provider-errors.json").read_text())["cases"]


@pytest.fixture(autouse=True)
def fixed_now() -> Iterator[FakeClock]:
    """Every test here runs at NOW on a fake clock."""
    clock = FakeClock(start=NOW)
    with installed(clock):
        yield clock


def raised_while_handling(inner: BaseException, make: Callable[[BaseException], BaseException]) -> BaseException:
    """``make(inner)`` raised inside ``except`` for *inner*, as libraries do (so ``__context__`` is set)."""
    try:
        try:
            raise inner
        except BaseException as caught:
            raise make(caught)  # the implicit chaining (__context__) is the point
    except BaseException as outer:
        return outer


def raised_from(inner: BaseException, outer: BaseException) -> BaseException:
    """*outer* raised ``from`` *inner* (``__cause__``)."""
    try:
        raise outer from inner
    except BaseException as caught:
        return caught


def kind_of(exc: BaseException) -> tuple[str, bool]:
    got = reliable.classify(exc)
    return got.kind, got.retry


# -- urllib --------------------------------------------------------------------------------------------------------


def http_error(status: int, headers: dict[str, str] | None = None) -> urllib.error.HTTPError:
    message = email.message.Message()
    for name, value in (headers or {}).items():
        message[name] = value
    return urllib.error.HTTPError("https://api.example.com/x", status, "msg", message, None)


@pytest.mark.parametrize(
    "reason",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        TimeoutError("timed out"),  # socket.timeout
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
        ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
    ],
    ids=lambda e: f"{type(e).__name__}-{e.args[0]}",
)
@pytest.mark.parametrize("how", ["urlopen", "reason-only"])
def test_urlerror_around_a_connection_error_is_transient(reason: OSError, how: str) -> None:
    """urlopen raises URLError(reason=<the socket error>) while handling it; either way it is transient."""
    exc = raised_while_handling(reason, urllib.error.URLError) if how == "urlopen" else urllib.error.URLError(reason)

    got = reliable.classify(exc)

    assert ("transient", True) == (got.kind, got.retry)
    assert got.reason.endswith(", inside URLError")


@pytest.mark.parametrize(
    "reason",
    [
        "unknown url type: ftp2",
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate has expired"),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
    ],
    ids=["text", "EAI_NONAME", "certificate", "ENOENT"],
)
def test_urlerror_around_a_permanent_reason_is_permanent(reason: Any) -> None:
    """A URLError whose reason is text, an unknown host, a bad certificate or a missing file is not retried."""
    assert ("permanent", False) == kind_of(urllib.error.URLError(reason))


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "3"}, ("rate_limited", True, 3.0, 429)),
        (503, {"Retry-After": "Sun, 29 Nov 2026 12:00:30 GMT"}, ("transient", True, 30.0, 503)),
        (503, {}, ("transient", True, None, 503)),
        (404, {}, ("permanent", False, None, 404)),
        (402, {}, ("quota_exhausted", False, None, 402)),
    ],
)
def test_urllib_httperror_follows_the_status_rules(
    status: int, headers: dict[str, str], expected: tuple[Any, ...]
) -> None:
    """urllib's HTTPError (a URLError whose .reason is text) is read by .code and .headers like any response."""
    got = reliable.classify(http_error(status, headers))

    assert expected == (got.kind, got.retry, got.wait, got.status)


def test_retry_honours_urllib_retry_after_and_retries_urlerror(fixed_now: FakeClock) -> None:
    """End to end: a 429 with Retry-After: 3, then a refused connection, then success: two retries, the 3s honoured."""
    outcomes: list[BaseException] = [
        http_error(429, {"Retry-After": "3"}),
        raised_while_handling(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), urllib.error.URLError),
    ]

    @reliable.retry(attempts=5, wait_initial=0.5, wait_max=0.5, jitter="none")
    def fetch() -> str:
        if outcomes:
            raise outcomes.pop(0)
        return "ok"

    assert "ok" == fetch()
    assert [3.0, 0.5] == fixed_now.sleeps


def test_retry_gives_up_at_once_on_urllib_404() -> None:
    """A 404 from urllib is raised untouched after one attempt."""
    calls = []

    @reliable.retry(attempts=5)
    def fetch() -> None:
        calls.append(1)
        raise http_error(404)

    with pytest.raises(urllib.error.HTTPError):
        fetch()
    assert [1] == calls


# -- look-alikes of the client libraries' wrapping shapes ------------------------------------------------------------


def lookalike(name: str, module: str, base: type[BaseException] = Exception, **body: Any) -> type[Any]:
    """A class called *name* in *module*; ``Other<name>`` in ``myapp.errors`` when *module* is empty."""
    cls = type(name if module else f"Other{name}", (base,), dict(body))
    cls.__module__ = module or "myapp.errors"
    return cls


def _max_retry_init(self: Any, pool: Any, url: str, reason: BaseException | None = None) -> None:
    self.pool, self.url, self.reason = pool, url, reason
    Exception.__init__(self, f"Max retries exceeded with url: {url} (Caused by {reason!r})")


def _request_exception_init(self: Any, *args: Any, request: Any = None, response: Any = None) -> None:
    self.request, self.response = request, response
    OSError.__init__(self, *args)


def requests_connection_error(real_names: bool) -> BaseException:
    """requests: ConnectionError(MaxRetryError(reason=NewConnectionError from ConnectionRefusedError)), in except."""
    new_connection = lookalike("NewConnectionError", "urllib3.exceptions" if real_names else "")
    max_retry = lookalike("MaxRetryError", "urllib3.exceptions" if real_names else "", __init__=_max_retry_init)
    connection = lookalike(
        "ConnectionError", "requests.exceptions" if real_names else "", OSError, __init__=_request_exception_init
    )
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    new = raised_from(refused, new_connection("Failed to establish a new connection"))
    retry_error = raised_from(new, max_retry(None, "/v1/x", new))
    return raised_while_handling(retry_error, lambda e: connection(e, request=object()))


def requests_read_timeout(real_names: bool) -> BaseException:
    """requests: ReadTimeout(ReadTimeoutError) raised while handling urllib3's, which came from a socket timeout."""
    read_timeout_error = lookalike("ReadTimeoutError", "urllib3.exceptions" if real_names else "")
    timeout = lookalike(
        "Timeout", "requests.exceptions" if real_names else "", OSError, __init__=_request_exception_init
    )
    inner = raised_while_handling(TimeoutError("The read operation timed out"), read_timeout_error)
    return raised_while_handling(inner, lambda e: timeout(e, request=object()))


def httpx_connect_error(real_names: bool) -> BaseException:
    """httpx: ConnectError raised from httpcore's ConnectError, raised while handling the OSError."""
    core = lookalike("ConnectError", "httpcore" if real_names else "")
    outer = lookalike("ConnectError", "httpx" if real_names else "")
    inner = raised_while_handling(OSError(errno.EHOSTUNREACH, "No route to host"), lambda e: core(str(e)))
    return raised_from(inner, outer("[Errno 113] No route to host"))


def aiohttp_connector_error(real_names: bool) -> BaseException:
    """aiohttp: ClientConnectorError(connection_key, os_error) keeps the OSError behind a property, no chaining."""
    base = lookalike("ClientOSError", "aiohttp.client_exceptions" if real_names else "", OSError)

    def init(self: Any, key: Any, os_error: OSError) -> None:
        self._conn_key, self._os_error = key, os_error
        OSError.__init__(self, os_error.errno, os_error.strerror)

    connector = lookalike(
        "ClientConnectorError",
        "aiohttp.client_exceptions" if real_names else "",
        base,
        __init__=init,
        os_error=property(lambda self: self._os_error),
    )
    exc: BaseException = connector(("api.example.com", 443), ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    return exc


def pymysql_operational_error(real_names: bool) -> BaseException:
    """PyMySQL: OperationalError with .original_exception set by hand (as `connect()` does)."""
    error = lookalike("OperationalError", "pymysql.err" if real_names else "")(2003, "Can't connect to MySQL server")
    error.original_exception = TimeoutError("timed out")
    exc: BaseException = error
    return exc


def sqlalchemy_operational_error(real_names: bool) -> BaseException:
    """SQLAlchemy: a DBAPIError keeps the driver's exception in .orig."""
    error = lookalike("OperationalError", "sqlalchemy.exc" if real_names else "")("(psycopg.OperationalError) ...")
    error.orig = ConnectionResetError(errno.ECONNRESET, "server closed the connection unexpectedly")
    exc: BaseException = error
    return exc


def user_wrapper(real_names: bool) -> BaseException:
    """A user's own error raised ``from`` a timeout."""
    return raised_from(TimeoutError("read timed out"), RuntimeError("fetching the orders failed"))


SHAPES = [
    requests_connection_error,
    requests_read_timeout,
    httpx_connect_error,
    aiohttp_connector_error,
    pymysql_operational_error,
    sqlalchemy_operational_error,
    user_wrapper,
]


@pytest.mark.parametrize("real_names", [True, False], ids=["real-names", "renamed"])
@pytest.mark.parametrize("make", SHAPES, ids=lambda f: f.__name__)
def test_wrapped_connection_errors_are_transient(make: Callable[[bool], BaseException], real_names: bool) -> None:
    """Each library's wrapping shape is transient, even renamed so that only the wrapping can tell."""
    assert ("transient", True) == kind_of(make(real_names))


def test_http_status_inside_a_wrapper_is_used_with_its_wait() -> None:
    """A wrapper raised from a 429 with Retry-After is rate_limited with that wait; from a 404, permanent."""
    limited = raised_from(http_error(429, {"retry-after": "7"}), RuntimeError("sync failed"))
    missing = raised_from(http_error(404), RuntimeError("sync failed"))

    got = reliable.classify(limited)

    assert ("rate_limited", True, 7.0, 429) == (got.kind, got.retry, got.wait, got.status)
    assert "rate limited (HTTP 429), inside RuntimeError" == got.reason
    assert ("permanent", False) == kind_of(missing)


def test_outer_status_wins_over_what_it_wraps() -> None:
    """An exception with its own HTTP status is decided by it, whatever it was raised from."""
    exc = raised_from(ConnectionResetError(), http_error(404))

    assert ("permanent", False) == kind_of(exc)


def test_certificate_failure_inside_a_connection_error_is_permanent() -> None:
    """httpx raises ConnectError from a certificate failure, requests an SSLError(ConnectionError): not retried."""
    core = lookalike("ConnectError", "httpcore")
    outer = lookalike("ConnectError", "httpx")
    cert = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    httpx_like = raised_from(raised_while_handling(cert, lambda e: core(str(e))), outer(str(cert)))
    ssl_error = lookalike("SSLError", "requests.exceptions", OSError, __init__=_request_exception_init)
    urllib3_ssl = raised_while_handling(cert, lookalike("SSLError", "urllib3.exceptions"))
    requests_like = raised_while_handling(
        lookalike("MaxRetryError", "urllib3.exceptions", __init__=_max_retry_init)(None, "/", urllib3_ssl),
        lambda e: ssl_error(e),
    )

    got = [reliable.classify(exc) for exc in (httpx_like, requests_like)]

    assert [("permanent", False)] * 2 == [(c.kind, c.retry) for c in got]
    assert all("SSLCertVerificationError" in c.reason for c in got)


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("WRONG_VERSION_NUMBER", "permanent"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "permanent"),
        ("UNEXPECTED_EOF_WHILE_READING", "transient"),
        ("DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "transient"),
    ],
)
def test_ssl_errors_by_reason(reason: str, kind: str) -> None:
    """An ssl.SSLError is transient unless its reason is a protocol or certificate mismatch."""
    exc = ssl.SSLError(1, f"[SSL: {reason}] ...")
    exc.reason = reason  # set by the ssl module on real errors

    assert kind == reliable.classify(exc).kind


def test_aiohttp_certificate_error_is_permanent() -> None:
    """aiohttp's ClientConnectorCertificateError is a ClientConnectorError, but not a transient one."""
    connector = lookalike("ClientConnectorError", "aiohttp.client_exceptions")
    certificate = lookalike("ClientConnectorCertificateError", "aiohttp.client_exceptions", connector)

    assert ("permanent", False) == kind_of(certificate("certificate verify failed"))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (OSError(errno.EHOSTUNREACH, "No route to host"), "transient"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "transient"),
        (OSError(errno.ENETDOWN, "Network is down"), "transient"),
        (OSError(errno.ECONNREFUSED, "Connection refused"), "transient"),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), "transient"),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), "transient"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "permanent"),
        (OSError(errno.ENOSPC, "No space left on device"), "permanent"),
        (OSError("no errno"), "permanent"),
        (PermissionError(errno.EACCES, "Permission denied"), "permanent"),
    ],
    ids=lambda v: f"{type(v).__name__}-{v.errno}" if isinstance(v, OSError) else str(v),
)
def test_oserror_by_errno(exc: OSError, kind: str) -> None:
    """An OSError is a connection error when its errno says so, and DNS only when the failure is temporary."""
    assert kind == reliable.classify(exc).kind


def test_errno_is_read_per_instance() -> None:
    """Two OSErrors of the same type with different errnos are classified apart (no per-type cache)."""
    kinds = [reliable.classify(OSError(code, "x")).kind for code in (errno.EHOSTUNREACH, errno.ENOSPC) * 2]

    assert ["transient", "permanent"] * 2 == kinds


# -- what is not followed ------------------------------------------------------------------------------------------


def test_bug_in_an_except_block_is_not_a_wrapper() -> None:
    """A KeyError (or AttributeError, TypeError...) raised while handling a timeout is a bug: permanent."""
    bugs = [
        raised_while_handling(TimeoutError(), lambda e: KeyError("k")),
        raised_while_handling(TimeoutError(), lambda e: AttributeError("a")),
        raised_while_handling(TimeoutError(), lambda e: TypeError("t")),
    ]

    assert [("permanent", False)] * 3 == [kind_of(exc) for exc in bugs]


def test_explicit_cause_is_followed_even_from_a_value_error() -> None:
    """``raise ValueError(...) from timeout`` says what caused it: transient."""
    assert ("transient", True) == kind_of(raised_from(TimeoutError(), ValueError("no answer")))


def test_raise_from_none_hides_the_context() -> None:
    """``raise X from None`` suppresses the context: X alone decides."""
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError:
            raise RuntimeError("boom") from None
    except RuntimeError as exc:
        got = kind_of(exc)

    assert ("permanent", False) == got


def test_reliable_errors_are_decided_by_their_own_type() -> None:
    """reliable's own errors keep their meaning whatever they were raised from."""
    exc = raised_from(ConnectionRefusedError(), reliable.ConfigError("bad store URL"))

    assert ("permanent", False) == kind_of(exc)


def test_wrapping_loops_and_long_chains_end() -> None:
    """An exception that wraps itself, two that wrap each other, and a chain of 100 wrappers all classify."""
    selfish = RuntimeError("me")
    selfish.reason = selfish  # type: ignore[attr-defined]
    first, second = RuntimeError("a"), RuntimeError("b")
    first.reason, second.reason = second, first  # type: ignore[attr-defined]
    deep: BaseException = TimeoutError()
    for i in range(100):
        deep = raised_from(deep, RuntimeError(str(i)))
    near = raised_from(raised_from(TimeoutError(), RuntimeError("inner")), RuntimeError("outer"))

    kinds = [reliable.classify(exc).kind for exc in (selfish, first, deep, near)]

    assert ["permanent", "permanent", "permanent", "transient"] == kinds


def test_cached_type_answers_do_not_leak_to_chained_instances() -> None:
    """A type first seen plain (and cached) is classified afresh when an instance carries a chain."""
    reliable.classify(RuntimeError())
    reliable.classify(ConnectionResetError())
    wrapper = raised_from(TimeoutError(), RuntimeError("wraps a timeout"))
    reset_after_cert = raised_while_handling(ssl.SSLCertVerificationError(1, "bad"), lambda e: ConnectionResetError())

    assert [("transient", True), ("permanent", False)] == [kind_of(wrapper), kind_of(reset_after_cert)]


def test_retry_loop_retries_a_chained_wrapper(fixed_now: FakeClock) -> None:
    """The retry loop's cached fast path does not skip the chain: a RuntimeError from a timeout is retried."""
    calls = []

    @reliable.retry(attempts=3, wait_initial=0, wait_max=0)
    def fetch() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("plain")  # permanent, and its type gets cached
        return "ok"

    @reliable.retry(attempts=3, wait_initial=0, wait_max=0)
    def wrapped() -> str:
        calls.append(2)
        if calls.count(2) < 3:
            raise raised_from(TimeoutError(), RuntimeError("wrapped"))
        return "ok"

    with pytest.raises(RuntimeError):
        fetch()
    assert "ok" == wrapped()
    assert [1, 2, 2, 2] == calls


# -- provider rows through every status carrier --------------------------------------------------------------------

BODILESS = [c for c in CASES if c["body"] is None]


class ClientResponseError(Exception):
    """aiohttp's shape: ``.status`` and ``.headers``."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(str(status))
        self.status = status
        self.headers = headers


@pytest.mark.parametrize("carrier", ["urllib", "aiohttp"])
@pytest.mark.parametrize("case", BODILESS, ids=[c["name"] for c in BODILESS])
def test_bodiless_provider_rows_through_urllib_and_aiohttp(case: dict[str, Any], carrier: str) -> None:
    """The rows without a body carry only status and headers, which urllib and aiohttp errors expose too."""
    if carrier == "urllib":
        exc: BaseException = http_error(case["status"], case["headers"])
    else:
        exc = ClientResponseError(case["status"], case["headers"])
    expect = case["expect"]
    wait = None
    if expect.get("wait") == "until that date":
        wait = email.utils.parsedate_to_datetime(case["headers"]["retry-after"]).timestamp() - NOW

    got = reliable.classify(exc)

    assert (expect["class"], expect["retry"], wait) == (got.kind, got.retry, got.wait)


def test_bodiless_rows_exist() -> None:
    """The data set still has rows without a body (so the test above tests something)."""
    assert 4 <= len(BODILESS)


def test_base_exceptions_inside_are_skipped() -> None:
    """A KeyboardInterrupt in the chain decides nothing; a timeout further in still does."""
    interrupted = raised_while_handling(KeyboardInterrupt(), lambda e: RuntimeError("stopped"))
    deeper = raised_from(TimeoutError(), KeyboardInterrupt())
    through = raised_from(deeper, RuntimeError("wrapper"))

    assert [("permanent", False), ("transient", True)] == [kind_of(interrupted), kind_of(through)]
