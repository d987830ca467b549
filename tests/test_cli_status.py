"""``reliable status`` and ``reliable check``: table, JSON, lock holders, exit codes (in process and as a command)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import reliable
from reliable._cli import main

if TYPE_CHECKING:
    from reliable.testing import FakeClock

pytest_plugins = ["observed_support"]
"""Fixtures: name, clock."""


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def fail() -> None:
    raise ValueError("upstream 503")


def record(url: str, name: str, *, ok: bool = True, max_age: Any = "1h") -> None:
    """Leave one heartbeat of *name* in the store at *url*."""
    job = reliable.observed(name, max_age=max_age, store=url, alert=False)(lambda: 1 if ok else fail())
    with contextlib.suppress(ValueError):
        job()


def test_status_table(url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """status prints one row per operation: state, last success and failure, outcome, staleness, runs."""
    record(url, "fetch")
    record(url, "load", ok=False)
    clock.advance("5m")

    code = main(["status", "--store", url])

    lines = capsys.readouterr().out.splitlines()
    assert 0 == code
    assert [
        "OPERATION",
        "STATE",
        "LAST",
        "SUCCESS",
        "LAST",
        "FAILURE",
        "OUTCOME",
        "STALE",
        "RUNS",
        "LOCK",
        "HOLDERS",
    ] == (lines[0].split())
    assert ["fetch", "ok", "5m", "ago", "never", "ok", "no", "0", "-"] == lines[1].split()
    assert ["load", "failing", "never", "5m", "ago", "(ValueError)", "error", "no", "0", "-"] == lines[2].split()


def test_status_json_with_lock_holders(url: str, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """status --json gives every field of each operation, and the holders of its store lease."""
    record(url, name)
    with reliable.single_instance(name, store=url):
        code = main(["status", "--store", url, "--json"])

    data = json.loads(capsys.readouterr().out)
    (operation,) = data["operations"]
    assert (0, name, "ok", True) == (code, operation["name"], operation["state"], operation["healthy"])
    assert [(os.getpid(), "store")] == [(h["pid"], h["kind"]) for h in operation["lock_holders"]]


def test_status_of_an_empty_store(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty store says so."""
    code = main(["status", "--store", url])

    assert (0, "no observed operations with heartbeats in this store\n") == (code, capsys.readouterr().out)


def test_check_healthy_is_0(url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """check exits 0 when every operation is healthy."""
    record(url, "fetch")

    code = main(["check", "--store", url, "--no-alert"])

    assert (0, "OK: 1 operation(s) healthy\n") == (code, capsys.readouterr().out)


def test_check_stale_is_1_and_alerts(url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """check exits 1 for a stale operation, names it, and sends a stale alert to the webhook of --slack
    (and of RELIABLE_ALERT_WEBHOOK, as for `reliable run`)."""
    received: list[Any] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    record(url, "fetch", max_age="30m")
    clock.advance("2h")

    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RELIABLE_ALERT_WEBHOOK", base + "/json")
            code = main(["check", "--store", url, "--slack", base + "/slack"])
    finally:
        server.shutdown()
        server.server_close()

    assert (1, "STALE fetch: last success 7200s ago, more than max_age=1800s\n") == (code, capsys.readouterr().out)
    assert [
        ("/json", "stale"),
        ("/slack", "[reliable] ERROR stale: fetch is stale: last success 7200s ago, more than max_age=1800s"),
    ] == sorted((path, body.get("kind") or body.get("text")) for path, body in received)


def test_check_failing_is_1(url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """check exits 1 for a failing operation."""
    record(url, "load", ok=False)

    code = main(["check", "--store", url, "--no-alert"])

    assert (1, "FAILING load: the last 1 run(s) failed\n") == (code, capsys.readouterr().out)


def test_check_unknown_name_is_1(url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """check --name of an operation the store has never seen exits 1."""
    record(url, "fetch")

    code = main(["check", "--store", url, "--name", "fetch", "--name", "nightly", "--no-alert"])

    assert 1 == code
    assert capsys.readouterr().out.startswith("UNKNOWN nightly: no heartbeat in this store")


@pytest.mark.parametrize("bad", ["redis://127.0.0.1:{port}/0", "ftp://example.com/state"])
def test_check_unreachable_store_is_2(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    """check exits 2 when the store cannot be reached (or its URL cannot be used), with the reason on stderr."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = bad.format(port=port)

    code = main(["check", "--store", store])

    assert 2 == code
    assert capsys.readouterr().err.startswith(f"reliable: cannot read the store {store}: ")


def test_no_subcommand_prints_help_and_is_2(capsys: pytest.CaptureFixture[str]) -> None:
    """reliable without a subcommand prints the usage and exits 2."""
    code = main([])

    assert 2 == code
    assert "status" in capsys.readouterr().err


def test_check_as_a_command(tmp_path: Path) -> None:
    """`python -m reliable check` as cron would run it: exit 1 while an operation fails, 0 once it succeeds."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    env = {**os.environ, "RELIABLE_STORE": url, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "reliable", "check", "--no-alert"]
    job = (
        "import reliable, sys\n"
        "@reliable.observed('nightly', max_age='1d', recover_after=1, alert=False)\n"
        "def job():\n"
        "    if sys.argv[1] == 'fail': raise ValueError('boom')\n"
        "try:\n"
        "    job()\n"
        "except ValueError:\n"
        "    pass\n"
    )

    codes = []
    for outcome in ("fail", "ok"):
        subprocess.run([sys.executable, "-c", job, outcome], env=env, check=True, timeout=60, capture_output=True)
        codes.append(subprocess.run(command, env=env, timeout=60, capture_output=True, text=True).returncode)

    assert [1, 0] == codes
