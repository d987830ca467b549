"""Alerts: where "it failed", "it is stale" and "it recovered" go, so that someone hears about it.

Configure the sinks once (the default is `Log`)::

    reliable.configure(alerts=[
        reliable.alerts.Log(),
        reliable.alerts.Webhook("https://hooks.slack.com/services/...", slack=True),
    ])

then prove the route works with ``reliable.alerts.test()``.

Alerts fire on a failure (once the operation is *failing*), on quota exhaustion, on
degraded output, on a lost lease, and, from ``reliable.health(alert=True)`` and
``reliable check``, on staleness and stuck runs; a recovery notice follows when the
operation is healthy again. They are throttled per operation and kind through the
store (default: one per hour), so several processes do not repeat each other, and
delivered by a background thread, never on the caller's path: a sink that fails is
reported (log record and ``reliable.alerts.sink_failed`` event) and never raises.
Delivery waits for the queue at interpreter exit (up to `EXIT_FLUSH_TIMEOUT` seconds);
call `flush` to wait sooner.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, Union, runtime_checkable
from urllib.parse import urlsplit

from ._alerting import EXIT_FLUSH_TIMEOUT, Alert, flush, report_failure, resolve_sinks
from ._errors import ConfigError
from ._internal import _clock
from ._internal._durations import seconds

__all__ = [
    "EXIT_FLUSH_TIMEOUT",
    "Alert",
    "Callback",
    "Delivery",
    "Log",
    "Policy",
    "Sink",
    "SinkLike",
    "Webhook",
    "flush",
    "test",
]

SinkLike = Union["Sink", Callable[[Alert], object]]
"""A sink, or a plain function of an `Alert` (wrapped in `Callback`)."""

_LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


@runtime_checkable
class Sink(Protocol):
    """Where alerts go: anything with ``send(alert)``. It may raise; `reliable` reports the failure."""

    def send(self, alert: Alert) -> None: ...


class Log:
    """Write each alert as a log record on *logger* (default ``reliable.alerts``), at its severity's level.

    The record carries the alert under ``record.reliable`` like every `reliable` record, so
    `reliable.logging.JSONFormatter` prints its fields.

    .. versionadded:: 0.1.0
    """

    def __init__(self, *, logger: str | logging.Logger = "reliable.alerts") -> None:
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)

    def __repr__(self) -> str:
        return f"Log(logger={self.logger.name!r})"

    def send(self, alert: Alert) -> None:
        level = _LEVELS.get(alert.severity, logging.ERROR)
        self.logger.log(
            level, "ALERT %s", alert.text(), extra={"reliable": {"event": "reliable.alert", **alert.to_dict()}}
        )


class Callback:
    """Call *function* with each `Alert` (a pager client, a queue, a test's list.append).

    .. versionadded:: 0.1.0
    """

    def __init__(self, function: Callable[[Alert], object]) -> None:
        if not callable(function):
            msg = f"function={function!r} is not callable; pass a function that takes an Alert"
            raise ConfigError(msg, parameter="function", value=function)
        self.function = function

    def __repr__(self) -> str:
        return f"Callback({getattr(self.function, '__qualname__', self.function)!r})"

    def send(self, alert: Alert) -> None:
        self.function(alert)


class Webhook:
    """POST each alert as JSON to *url*.

    Args:
        url: An ``http://`` or ``https://`` URL.
        timeout: Seconds (or ``"5s"``, a `timedelta`) each attempt may take.
        retries: Further attempts after a connection error, a timeout, HTTP 429 or 5xx,
            waiting 0.5 s, 1 s, 2 s ... on the library clock. Other 4xx answers are not retried.
        slack: Send ``{"text": "..."}``, the payload of Slack-style incoming webhooks
            (Slack, Mattermost, Rocket.Chat, Discord's ``/slack`` endpoint), instead of the
            alert's fields (`Alert.to_dict`).
        headers: Extra request headers (an ``Authorization`` token, for instance).

    Raises:
        ConfigError: a bad *url*, *timeout* or *retries*.

    Delivery runs on the alert thread, never in the caller's call. The URL's path and
    query are left out of ``repr()``, since webhook URLs often hold a secret.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float | timedelta | str = 5.0,
        retries: int = 2,
        slack: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            msg = f"url={url!r} is not an http(s) URL; pass the webhook's full address, e.g. 'https://hooks.example.com/T0/B0/x'"
            raise ConfigError(msg, parameter="url", value=url)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            msg = f"retries={retries!r} is invalid; pass an int >= 0 (further attempts after a failed POST)"
            raise ConfigError(msg, parameter="retries", value=retries)
        self.url = url
        self.timeout = seconds(timeout, "timeout", allow_zero=False)
        self.retries = retries
        self.slack = slack
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return f"Webhook('{parts.scheme}://{parts.netloc}/…', slack={self.slack})"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body sent for *alert*."""
        return {"text": alert.text()} if self.slack else alert.to_dict()

    def send(self, alert: Alert) -> None:
        body = json.dumps(self.payload(alert), default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "reliable-alerts", **self.headers}
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                _clock.current().sleep(0.5 * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code < 500 and exc.code != 429:
                    break
            except (OSError, ValueError) as exc:  # URLError, timeouts and refused connections are OSErrors
                last = exc
        msg = f"POST to {self!r} failed after {attempt + 1} attempt(s): {last}"
        raise OSError(msg) from last


@dataclass(frozen=True)
class Policy:
    """How an observed operation alerts: ``observed(..., alert=Policy(sinks=[...], throttle="15m"))``.

    Attributes:
        sinks: The sinks, or None for those of ``reliable.configure(alerts=...)`` (default: `Log`).
        throttle: At most one alert per operation and kind within this duration, across
            every process sharing the store.

    .. versionadded:: 0.1.0
    """

    sinks: Sequence[SinkLike] | None = None
    throttle: float | timedelta | str = "1h"
    throttle_seconds: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "throttle_seconds", seconds(self.throttle, "throttle"))
        if self.sinks is not None:
            if isinstance(self.sinks, (str, bytes)) or not isinstance(self.sinks, Sequence):
                msg = f"sinks={self.sinks!r} is not a list of sinks; pass e.g. [reliable.alerts.Log()]"
                raise ConfigError(msg, parameter="sinks", value=self.sinks)
            resolve_sinks(self.sinks, strict=True)


@dataclass(frozen=True)
class Delivery:
    """What `test` saw for one sink: *ok*, or the *error* it raised.

    .. versionadded:: 0.1.0
    """

    sink: Any
    ok: bool
    error: BaseException | None = None


def test(*, sinks: Sequence[SinkLike] | None = None, operation: str = "reliable") -> list[Delivery]:  # noqa: PT028
    """Send a test alert through every configured sink (or *sinks*), now, and say how each went.

    Unlike real alerts, it is neither throttled nor queued: the call returns after every
    sink answered. A failing sink is reported as always (log and ``reliable.alerts.sink_failed``)
    and shows in the result; nothing raises.

    >>> seen = []
    >>> [d.ok for d in test(sinks=[seen.append])], seen[0].kind
    ([True], 'test')

    .. versionadded:: 0.1.0
    """
    import socket

    chosen = resolve_sinks(sinks)
    alert = Alert.make(
        "test", operation, f"test alert from reliable on {socket.gethostname()}: if you read this, alerts reach you"
    )
    deliveries: list[Delivery] = []
    for sink in chosen:
        try:
            sink.send(alert)
        except Exception as exc:
            report_failure(sink, alert, exc)
            deliveries.append(Delivery(sink, False, exc))
        else:
            deliveries.append(Delivery(sink, True))
    return deliveries


test.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test function
