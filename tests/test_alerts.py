"""`reliable.alerts`: when alerts fire, throttling in the store, recovery notices, the sinks, and failing sinks."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

import reliable
from reliable import alerts
from reliable._config import configured
from reliable._internal import _telemetry
from reliable.testing import http_error

if TYPE_CHECKING:
    from reliable.stores import Store
    from reliable.testing import FakeClock

pytest_plugins = ["observed_support"]
"""Fixtures: name, clock."""


def fail(exc: BaseException | None = None) -> Any:
    raise exc or ValueError("boom")


class Hook:
    """A webhook receiver on 127.0.0.1 that answers *status* and records each request."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    made = Hook()
    yield made
    made.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def delivered(seen: list[alerts.Alert]) -> list[str]:
    alerts.flush()
    return [a.kind for a in seen]


# -- when alerts fire --------------------------------------------------------------------------------


def test_failure_alert_through_configured_function(clock: FakeClock, name: str) -> None:
    """A failing call alerts through the configured sinks (a plain function becomes a Callback), with details."""
    seen: list[alerts.Alert] = []
    with configured(store="memory://", alerts=[seen.append]), pytest.raises(ValueError):
        reliable.observed(name)(fail)()

    assert ["failure"] == delivered(seen)
    (alert,) = seen
    assert (name, "error", f"{name} failed: ValueError: boom", "ValueError") == (
        alert.operation,
        alert.severity,
        alert.message,
        alert.details["error_type"],
    )


def test_throttled_per_operation_in_the_store(store: Store, clock: FakeClock, name: str) -> None:
    """Within the throttle window a second failure sends nothing; after it, the next failure alerts again."""
    seen: list[alerts.Alert] = []
    job = reliable.observed(name, store=store, alert=alerts.Policy(sinks=[seen.append], throttle="10m"))(fail)
    for advance in (0, 60, 600):
        clock.advance(advance)
        with pytest.raises(ValueError):
            job()
        alerts.flush()

    assert ["failure", "failure"] == delivered(seen)
    assert store.get(f"reliable:alert:{name}:failure") is not None


def test_recovery_notice_then_fresh_failure_alerts_at_once(store: Store, clock: FakeClock, name: str) -> None:
    """After recover_after successes a recovery notice goes out, and a new failure alerts without waiting for the
    throttle window (the recovery clears the marks)."""
    seen: list[alerts.Alert] = []
    job = reliable.observed(name, store=store, alert=[seen.append], recover_after=2)
    failing, working = job(fail), job(lambda: 1)
    for call in (failing, working, working, failing):
        with contextlib.suppress(ValueError):
            call()
        alerts.flush()

    assert ["failure", "recovered", "failure"] == delivered(seen)
    assert ("info", ["failure"]) == (seen[1].severity, seen[1].details["recovered"])


def test_heartbeat_operation_alerts_from_the_store_summary(store: Store, clock: FakeClock, name: str) -> None:
    """With heartbeats, failing_after counts in the store: the alert comes on the second failure."""
    seen: list[alerts.Alert] = []
    job = reliable.observed(name, heartbeat=True, store=store, alert=[seen.append], failing_after=2)(fail)
    counts = []
    for _ in range(2):
        with pytest.raises(ValueError):
            job()
        counts.append(len(delivered(seen)))

    assert [0, 1] == counts


def test_quota_exhaustion_alerts_as_critical(clock: FakeClock, name: str) -> None:
    """An error classified quota_exhausted alerts at once as critical, with its classification."""
    seen: list[alerts.Alert] = []
    quota = http_error(429, body={"error": {"code": "insufficient_quota", "message": "You exceeded your quota"}})
    with configured(store="memory://"), pytest.raises(type(quota)):
        reliable.observed(name, alert=[seen.append], failing_after=3)(lambda: fail(quota))()

    assert ["quota_exhausted"] == delivered(seen)
    assert ("critical", "quota_exhausted") == (seen[0].severity, seen[0].details["error_kind"])


def test_degraded_output_alerts(clock: FakeClock, name: str) -> None:
    """A degraded call alerts with the reason."""
    seen: list[alerts.Alert] = []
    with configured(store="memory://"):
        reliable.observed(name, expect=lambda rows: rows > 0, alert=[seen.append])(lambda: 0)()

    assert ["degraded"] == delivered(seen)
    assert "expect= is false for the result 0" == seen[0].details["reason"]


def test_lost_lease_alerts(clock: FakeClock, name: str) -> None:
    """A lock lost inside the call (reliable.single_instance.lost) alerts at once."""
    seen: list[alerts.Alert] = []
    with configured(store="memory://"), reliable.observed(name, alert=[seen.append]):
        _telemetry.emit("single_instance", "lost", "lost lock 'x' (token 3)", attributes={"reliable.operation": name})

    assert ["lease_lost"] == delivered(seen)
    assert "lost lock 'x' (token 3)" in seen[0].message


def test_alert_false_sends_nothing(clock: FakeClock, name: str) -> None:
    """alert=False: no alert even for a failure."""
    seen: list[alerts.Alert] = []
    with configured(store="memory://", alerts=[seen.append]), pytest.raises(ValueError):
        reliable.observed(name, alert=False)(fail)()

    assert [] == delivered(seen)


def test_delivery_is_off_the_callers_path(clock: FakeClock, name: str) -> None:
    """A slow sink does not delay the failing call: delivery happens on the alert thread."""
    release = threading.Event()
    done: list[str] = []

    def slow(alert: alerts.Alert) -> None:
        release.wait(5)
        done.append(alert.kind)

    with configured(store="memory://"), pytest.raises(ValueError):
        reliable.observed(name, alert=[slow])(fail)()
    before = list(done)
    release.set()
    alerts.flush()

    assert ([], ["failure"]) == (before, done)


# -- sinks -----------------------------------------------------------------------------------------


def test_log_sink_writes_at_the_severity_level(caplog: pytest.LogCaptureFixture) -> None:
    """Log writes 'ALERT ...' on reliable.alerts at the alert's severity, with the alert under record.reliable."""
    caplog.set_level(logging.INFO, logger="reliable.alerts")
    alert = alerts.Alert.make("stale", "sync", "sync is stale")

    alerts.Log().send(alert)

    (record,) = caplog.records
    assert (logging.ERROR, "ALERT [reliable] ERROR stale: sync is stale") == (record.levelno, record.getMessage())
    assert ("reliable.alert", "stale", "sync") == (
        record.reliable["event"],  # type: ignore[attr-defined]
        record.reliable["kind"],  # type: ignore[attr-defined]
        record.reliable["operation"],  # type: ignore[attr-defined]
    )


def test_webhook_posts_the_alert_as_json(hook: Hook) -> None:
    """Webhook POSTs Alert.to_dict() as JSON with the given headers."""
    alert = alerts.Alert.make("failure", "sync", "sync failed: boom", error="boom")

    alerts.Webhook(hook.url, headers={"Authorization": "Bearer t"}).send(alert)

    ((path, headers, body),) = hook.requests
    assert ("/hooks/T0/secret", "Bearer t", "application/json") == (
        path,
        headers["Authorization"],
        headers["Content-Type"],
    )
    assert alert.to_dict() == body


def test_webhook_slack_payload(hook: Hook) -> None:
    """slack=True posts {"text": ...}, the payload of Slack-style incoming webhooks."""
    alerts.Webhook(hook.url, slack=True).send(alerts.Alert.make("recovered", "sync", "sync is healthy again"))

    assert [{"text": "[reliable] INFO recovered: sync is healthy again"}] == [b for _, _, b in hook.requests]


def test_webhook_answering_500_is_retried_then_reported_and_never_breaks_the_call(
    clock: FakeClock, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook answering 500 gets 1 + retries attempts (waits on the library clock), then the failure is
    reported: an ERROR log and the reliable.alerts.sink_failed event. The call itself only sees its own error,
    and the other sinks still get the alert."""
    server = Hook(status=500)
    seen: list[alerts.Alert] = []
    before = _telemetry.event_counts().get(("reliable.alerts.sink_failed", name), 0)
    try:
        with configured(store="memory://"), pytest.raises(ValueError):
            reliable.observed(name, alert=[alerts.Webhook(server.url, retries=2), seen.append])(fail)()
        kinds = delivered(seen)
    finally:
        server.close()

    assert (3, ["failure"]) == (len(server.requests), kinds)
    assert before + 1 == _telemetry.event_counts()[("reliable.alerts.sink_failed", name)]
    (record,) = [r for r in caplog.records if r.name == "reliable.alerts" and r.levelno == logging.ERROR]
    assert "Webhook('http://127.0.0.1:" in record.getMessage()
    assert "secret" not in record.getMessage()
    assert [0.5, 1.0] == clock.sleeps


def test_webhook_not_listening_is_reported(clock: FakeClock, name: str) -> None:
    """A webhook whose port is closed is reported as a failed sink; the call returns normally."""
    url = f"http://127.0.0.1:{closed_port()}/hook"
    before = _telemetry.event_counts().get(("reliable.alerts.sink_failed", name), 0)
    with configured(store="memory://"):
        result = reliable.observed(name, expect=bool, alert=[alerts.Webhook(url, retries=1, timeout=2)])(lambda: 0)()
    alerts.flush()

    assert 0 == result
    assert before + 1 == _telemetry.event_counts()[("reliable.alerts.sink_failed", name)]


def test_webhook_4xx_is_not_retried() -> None:
    """An answer of 400 means the request is wrong: no retry, the error is raised to the dispatcher."""
    server = Hook(status=400)
    try:
        with pytest.raises(OSError, match="after 1 attempt"):
            alerts.Webhook(server.url, retries=3).send(alerts.Alert.make("test", "x", "x"))
    finally:
        server.close()

    assert 1 == len(server.requests)


def test_alerts_test_sends_through_every_configured_sink(hook: Hook) -> None:
    """alerts.test() sends one test alert through each configured sink now and reports each delivery."""
    seen: list[alerts.Alert] = []

    def broken(alert: alerts.Alert) -> None:
        raise RuntimeError("pager down")

    with configured(alerts=[seen.append, alerts.Webhook(hook.url), broken]):
        deliveries = alerts.test()

    assert [True, True, False] == [d.ok for d in deliveries]
    assert "pager down" == str(deliveries[2].error)
    assert (["test"], "test") == ([a.kind for a in seen], hook.requests[0][2]["kind"])


def test_default_sink_is_log(caplog: pytest.LogCaptureFixture) -> None:
    """With no sinks configured, alerts go to the Log sink."""
    caplog.set_level(logging.INFO, logger="reliable.alerts")
    with configured(alerts=None):
        (delivery,) = alerts.test()

    assert "Log(logger='reliable.alerts')" == repr(delivery.sink)
    assert ["ALERT"] == [r.getMessage().split()[0] for r in caplog.records]


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda: alerts.Webhook("ftp://example.com/x"), "url"),
        (lambda: alerts.Webhook("https://example.com", timeout=0), "timeout"),
        (lambda: alerts.Webhook("https://example.com", retries=-1), "retries"),
        (lambda: alerts.Callback(42), "function"),  # type: ignore[arg-type]
        (lambda: alerts.Policy(sinks=[42]), "sinks"),  # type: ignore[list-item]
        (lambda: alerts.Policy(sinks="log"), "sinks"),  # type: ignore[arg-type]
        (lambda: alerts.Policy(throttle="often"), "throttle"),
    ],
)
def test_bad_sink_arguments_raise_config_error(make: Any, parameter: str) -> None:
    """Bad sink or policy arguments raise ConfigError naming the parameter."""
    with pytest.raises(reliable.ConfigError) as raised:
        make()

    assert parameter == raised.value.parameter  # type: ignore[attr-defined]


def test_webhook_repr_hides_the_secret_path() -> None:
    """A webhook's repr shows scheme and host only: webhook URLs carry secrets."""
    assert "Webhook('https://hooks.slack.com/…', slack=True)" == repr(
        alerts.Webhook("https://hooks.slack.com/services/T0/B0/xyz", slack=True)
    )


def test_cancelled_call_is_an_error_without_alert(clock: FakeClock, name: str) -> None:
    """A call stopped by asyncio cancellation is recorded as an error of kind 'cancelled' and sends no alert."""
    import asyncio

    seen: list[alerts.Alert] = []
    observed = reliable.observed(name, alert=[seen.append])

    async def main() -> None:
        async def job() -> None:
            await asyncio.Event().wait()

        task = asyncio.ensure_future(observed(job)())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with configured(store="memory://"):
        asyncio.run(main())

    assert [] == delivered(seen)
