"""``reliable run -- CMD``: driven as a real subprocess (overlap, retries, timeout, signals, heartbeats, alerts)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.processes

COUNTING = textwrap.dedent(
    """
    import pathlib, sys
    counter = pathlib.Path(sys.argv[1])
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    print(f"attempt {n}", flush=True)
    sys.exit(0 if n >= int(sys.argv[2]) else int(sys.argv[3]))
    """
)
"""Counts its runs in a file; exits 0 from run argv[2] on, else with code argv[3]."""

HOLDING = textwrap.dedent(
    """
    import pathlib, sys, time
    pathlib.Path(sys.argv[1]).touch()
    while not pathlib.Path(sys.argv[2]).exists():
        time.sleep(0.01)
    """
)
"""Touches argv[1], then waits until argv[2] exists: a run that holds its lock for as long as the test wants."""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELIABLE_", "OTEL_", "TRACEPARENT"))}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        RELIABLE_STORE=f"sqlite:///{tmp_path / 'state.db'}",
        RELIABLE_LOCK_DIR=str(tmp_path / "locks"),
    )
    env.update(extra)
    return env


def _reliable(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reliable", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        timeout=60,
        check=False,
    )


def _start(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reliable", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path, **env),
    )


def _holder(tmp_path: Path, started: Path, release: Path, *options: str) -> subprocess.Popen[str]:
    """`reliable run --lock --name job` of a command that holds the lock until *release* exists."""
    command = [sys.executable, "-c", HOLDING, str(started), str(release)]
    return _start(tmp_path, "run", "--lock", *options, "--name", "job", "--", *command)


def _wait_for(path: Path, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended before {path.name} appeared: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within 30s")
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook on 127.0.0.1 that keeps the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


# -- overlap ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [[], ["--lock-store"]], ids=["file-lock", "store-lease"])
def test_two_runs_at_once_one_runs_and_one_skips(tmp_path: Path, backend: list[str]) -> None:
    """With --lock (a file lock, or a lease in the store), a run while another holds the lock does nothing, exit 0."""
    started, release, second = tmp_path / "started", tmp_path / "release", tmp_path / "second-ran"
    first = _holder(tmp_path, started, release, *backend)
    _wait_for(started, first)

    skipped = _reliable(tmp_path, "run", "--lock", *backend, "--name", "job", "--", "touch", str(second))
    release.touch()
    _, first_err = first.communicate(timeout=60)

    assert (0, 0) == (skipped.returncode, first.returncode), (skipped.stderr, first_err)
    assert not second.exists()
    assert "skipped: already running" in skipped.stderr


def test_skip_exit_code_and_lock_wait_timeout(tmp_path: Path) -> None:
    """A skipped run exits --skip-exit-code; --lock-wait gives up after its time with exit 75, command not run."""
    started, release, ran = tmp_path / "started", tmp_path / "release", tmp_path / "ran"
    first = _holder(tmp_path, started, release)
    _wait_for(started, first)

    skipped = _reliable(tmp_path, "run", "--lock", "--skip-exit-code", "3", "--name", "job", "--", "touch", str(ran))
    waited = _reliable(tmp_path, "run", "--lock-wait", "0.2", "--name", "job", "--", "touch", str(ran))
    release.touch()
    first.communicate(timeout=60)

    assert (3, 75) == (skipped.returncode, waited.returncode), (skipped.stderr, waited.stderr)
    assert not ran.exists()


def test_lock_wait_runs_once_the_lock_is_free(tmp_path: Path) -> None:
    """--lock-wait waits while another run holds the lock, then runs the command (exit 0)."""
    import reliable
    from reliable.stores.sqlite import SQLiteStore

    started, release, ran = tmp_path / "started", tmp_path / "release", tmp_path / "ran"
    first = _holder(tmp_path, started, release)
    _wait_for(started, first)
    after_release = f"test -e {release} && touch {ran}"
    second = _start(tmp_path, "run", "--lock-wait", "60", "--name", "job", "--", "sh", "-c", after_release)
    store = SQLiteStore(tmp_path / "state.db")
    deadline = time.monotonic() + 30
    while len(reliable.health(store=store)["job"].running) < 2:  # the second run is in progress, waiting
        assert second.poll() is None, second.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)

    release.touch()
    first.communicate(timeout=60)
    second.communicate(timeout=60)
    store.close()

    assert 0 == second.returncode
    assert ran.exists()


# -- retries --------------------------------------------------------------------------------------


def test_retries_until_the_command_succeeds(tmp_path: Path) -> None:
    """A command failing twice then succeeding, with --retries 3, runs 3 times and exits 0; each retry is logged."""
    counter = tmp_path / "count"
    done = _reliable(
        tmp_path, "run", "--retries", "3", "--wait-initial", "0.01", "--wait-max", "0.02",
        "--", sys.executable, "-c", COUNTING, str(counter), "3", "1",
    )  # fmt: skip

    assert 0 == done.returncode, done.stderr
    assert "3" == counter.read_text()
    assert "attempt 1\nattempt 2\nattempt 3\n" == done.stdout
    assert 2 == done.stderr.count("retrying")


def test_gives_up_with_the_last_exit_code(tmp_path: Path) -> None:
    """A command that always fails runs 1 + --retries times; the exit code is the last attempt's."""
    counter = tmp_path / "count"
    done = _reliable(
        tmp_path, "run", "--retries", "2", "--wait-initial", "0.01", "--wait-max", "0.01",
        "--", sys.executable, "-c", COUNTING, str(counter), "99", "7",
    )  # fmt: skip

    assert 7 == done.returncode
    assert "3" == counter.read_text()


def test_retry_on_exit_limits_which_codes_are_retried(tmp_path: Path) -> None:
    """With --retry-on-exit 3, exit code 7 is not retried: one attempt."""
    counter = tmp_path / "count"
    done = _reliable(
        tmp_path, "run", "--retries", "2", "--retry-on-exit", "3", "--wait-initial", "0.01",
        "--", sys.executable, "-c", COUNTING, str(counter), "99", "7",
    )  # fmt: skip

    assert (7, "1") == (done.returncode, counter.read_text())


# -- time limits and signals ---------------------------------------------------------------------


def test_timeout_kills_a_hanging_child_and_its_children(tmp_path: Path) -> None:
    """--timeout stops the whole process group, grandchildren that ignore SIGTERM included, and exits 124."""
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 30 & echo $! > {pidfile}; trap '' TERM; wait"
    done = _reliable(tmp_path, "run", "--timeout", "0.3", "--kill-after", "0.2", "--", "sh", "-c", script)

    assert 124 == done.returncode, done.stderr
    assert not _alive(int(pidfile.read_text()))
    assert "stopped at --timeout 0.3s" in done.stderr


def test_deadline_stops_the_running_attempt(tmp_path: Path) -> None:
    """--deadline bounds all attempts: an attempt still running at the deadline is stopped with exit 124."""
    done = _reliable(tmp_path, "run", "--deadline", "0.3", "--kill-after", "0.1", "--", "sleep", "30")

    assert 124 == done.returncode
    assert "the 0.3s --deadline" in done.stderr


def test_sigterm_is_forwarded_and_not_retried(tmp_path: Path) -> None:
    """SIGTERM to `reliable run` reaches the child, which cleans up; its exit code is returned, with no retry."""
    ready, marker, counter = tmp_path / "ready", tmp_path / "got-term", tmp_path / "count"
    child = (
        f"echo x >> {counter}; trap 'echo term > {marker}; exit 5' TERM; touch {ready}; while true; do sleep 0.01; done"
    )
    proc = _start(tmp_path, "run", "--retries", "3", "--wait-initial", "0.01", "--", "sh", "-c", child)
    _wait_for(ready, proc)
    time.sleep(0.02)  # let run_command install its forwarding handler
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)

    assert 5 == proc.returncode, err
    assert "term" == marker.read_text().strip()
    assert 1 == len(counter.read_text().split())
    assert "forwarded SIGTERM" in err


def test_command_not_found_exits_127(tmp_path: Path) -> None:
    """A command that does not exist exits 127 (not retried by default)."""
    done = _reliable(tmp_path, "run", "--retries", "2", "--", str(tmp_path / "no-such-command"))

    assert 127 == done.returncode
    assert 0 == done.stderr.count("retrying")


# -- heartbeats, alerts, output -----------------------------------------------------------------

CHECK_LATER = textwrap.dedent(
    """
    import sys, time
    from reliable._cli import main
    from reliable.testing import FakeClock, installed
    with installed(FakeClock(start=time.time() + float(sys.argv[1]))):
        sys.exit(main(["check", "--no-alert"]))
    """
)
"""`reliable check` with the library clock moved forward (test only: staleness without waiting)."""


def test_heartbeat_is_visible_to_reliable_check(tmp_path: Path) -> None:
    """A run with --max-age leaves a heartbeat: `reliable check` exits 0, and 1 (stale) once max_age has passed."""
    ran = _reliable(tmp_path, "run", "--name", "nightly", "--max-age", "1h", "--", "true")
    fresh = _reliable(tmp_path, "check", "--no-alert")
    later = subprocess.run(
        [sys.executable, "-c", CHECK_LATER, "7200"], capture_output=True, text=True, env=_env(tmp_path), timeout=60
    )

    assert (0, 0, 1) == (ran.returncode, fresh.returncode, later.returncode), (fresh.stdout, later.stderr)
    assert "OK: 1 operation(s) healthy" in fresh.stdout
    assert "STALE nightly" in later.stdout


def test_failure_alert_reaches_a_local_webhook(tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    """A failed run POSTs a failure alert to $RELIABLE_ALERT_WEBHOOK with the exit code and the output's tail."""
    url, received = webhook
    done = _reliable(
        tmp_path, "run", "--name", "export", "--", "sh", "-c", "echo rows: 0 >&2; echo boom >&2; exit 4",
        RELIABLE_ALERT_WEBHOOK=url,
    )  # fmt: skip

    assert 4 == done.returncode
    assert ["failure"] == [body["kind"] for body in received], done.stderr
    alert = received[0]
    assert ("export", 4) == (alert["operation"], alert["details"]["exit_code"])
    assert "boom" in alert["details"]["output_tail"]
    assert "sh exited with code 4; last output: boom" in alert["message"]


def test_no_alert_sends_nothing(tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    """--no-alert: a failed run alerts no sink (the failure is still logged and recorded)."""
    url, received = webhook
    done = _reliable(tmp_path, "run", "--no-alert", "--webhook", url, "--", "false")

    assert (1, []) == (done.returncode, received)
    assert "failed" in done.stderr


def test_json_summary_on_stderr_and_stdout_left_to_the_child(tmp_path: Path) -> None:
    """--json writes JSON log lines on stderr, the last being the summary; stdout holds the child's output only."""
    done = _reliable(tmp_path, "run", "--json", "--name", "dump", "--", "sh", "-c", "echo data; exit 3")
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    summary = lines[-1]

    assert "data\n" == done.stdout
    assert "reliable.run.finished" == summary["event"]
    expected = {"reliable.operation": "dump", "process.exit.code": 3, "reliable.outcome": "error"}
    assert expected == {key: summary[key] for key in expected}


def test_one_span_per_run(tmp_path: Path) -> None:
    """With OTEL_TRACES_EXPORTER=console the run exports one span named after the operation, parented by TRACEPARENT."""
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    done = _reliable(
        tmp_path, "run", "--name", "traced", "--", "true", OTEL_TRACES_EXPORTER="console", TRACEPARENT=parent
    )

    assert 0 == done.returncode
    assert 1 == done.stderr.count('"name": "traced"')
    assert '"trace_id": "0x0af7651916cd43dd8448eb211c80319c"' in done.stderr


def test_child_gets_the_run_span_as_traceparent(tmp_path: Path) -> None:
    """With tracing on, the child's environment carries TRACEPARENT of the run's span (same trace, new parent)."""
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    done = _reliable(
        tmp_path, "run", "--", "sh", "-c", "echo $TRACEPARENT", OTEL_TRACES_EXPORTER="console", TRACEPARENT=parent
    )
    seen = done.stdout.strip()

    assert seen.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert parent != seen


def test_bad_config_file_exits_125(tmp_path: Path) -> None:
    """An unreadable config file is reliable's own error: exit 125, command not run."""
    ran = tmp_path / "ran"
    done = _reliable(tmp_path, "run", "--config", str(tmp_path / "missing.toml"), "--", "touch", str(ran))

    assert 125 == done.returncode
    assert not ran.exists()
    assert "cannot read the config file" in done.stderr


# -- in process: options, configuration, exit codes -------------------------------------------


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`reliable run` in this process with its store, locks and state under *tmp_path*, no alert or OTel env."""
    for key in list(os.environ):
        if key.startswith(("RELIABLE_", "OTEL_")) or key == "TRACEPARENT":
            monkeypatch.delenv(key)
    for key, value in _env(tmp_path).items():
        if key.startswith(("RELIABLE_", "XDG_")):
            monkeypatch.setenv(key, value)
    return tmp_path


def _parse(*argv: str) -> Any:
    from reliable._cli import build_parser

    return build_parser().parse_args(["run", *argv])


def test_options_become_settings() -> None:
    """Durations take seconds or '5m'; --lock-wait means waiting for the lock; the command follows `--`."""
    from reliable._cli_run import settings_from

    settings = settings_from(
        _parse("--lock-wait", "5m", "--timeout", "90", "--retries", "2", "--retry-on-exit", "1,75-76", "--", "a", "-x")
    )

    assert ["a", "-x"] == settings.argv
    assert ("wait", 300.0, 90.0, 2) == (settings.lock, settings.lock_wait, settings.timeout, settings.retries)
    assert frozenset({1, 75, 76}) == settings.retry_on_exit


@pytest.mark.parametrize(("text", "codes"), [("1", {1}), ("1,3", {1, 3}), ("100-102, 7", {7, 100, 101, 102})])
def test_parse_codes(text: str, codes: set[int]) -> None:
    """--retry-on-exit takes codes and ranges separated by commas."""
    from reliable._cli_run import parse_codes

    assert frozenset(codes) == parse_codes(text)


@pytest.mark.parametrize("text", ["0", "256", "x", "5-3", "1,,2", "-1"])
def test_parse_codes_rejects_what_is_not_a_failure_code(text: str) -> None:
    """Codes outside 1..255, reversed ranges and non-numbers are usage errors."""
    import argparse

    from reliable._cli_run import parse_codes

    with pytest.raises(argparse.ArgumentTypeError, match="--retry-on-exit"):
        parse_codes(text)


def test_default_name_is_stable_and_tells_commands_apart() -> None:
    """The default name is the program's base name plus a hash of the whole command line."""
    from reliable._cli_run import default_name

    name = default_name(["/usr/bin/pg_dump", "db1"])

    assert name == default_name(["/usr/bin/pg_dump", "db1"])
    assert name != default_name(["/usr/bin/pg_dump", "db2"])
    assert name.startswith("pg_dump-")


def test_default_retried_exit_codes() -> None:
    """By default every failure is retried except 124 (timed out), 126 (not executable) and 127 (not found)."""
    from reliable._cli_run_attempt import Settings

    settings = Settings(argv=["x"], name="x")

    assert [False, True, True, False, False, False, True] == [
        settings.retried(code) for code in (0, 1, 2, 124, 126, 127, 137)
    ]


@pytest.mark.parametrize(
    "argv", [["--timeout", "soon", "--", "true"], ["--retries", "-1", "--", "true"], ["--skip-exit-code", "300", "x"]]
)
def test_bad_option_values_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A bad value exits 2 with argparse's message naming the option."""
    from reliable._cli import main

    with pytest.raises(SystemExit) as exited:
        main(["run", *argv])

    assert 2 == exited.value.code
    assert argv[0] in capsys.readouterr().err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`reliable run` without a command exits 2 and shows the usage."""
    from reliable._cli import main

    assert 2 == main(["run", "--retries", "1"])
    assert "usage: reliable run [options] -- CMD" in capsys.readouterr().err


def _not_executable(tmp_path: Path) -> str:
    path = tmp_path / "script.sh"
    path.write_text("echo hi\n")
    return str(path)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (lambda tmp: ["true"], 0),
        (lambda tmp: ["sh", "-c", "exit 3"], 3),
        (lambda tmp: ["sh", "-c", "kill -KILL $$"], 128 + signal.SIGKILL),
        (lambda tmp: [str(tmp / "missing")], 127),
        (_not_executable, 126),
    ],
    ids=["ok", "exit-3", "killed", "not-found", "not-executable"],
)
def test_exit_code_mapping(isolated: Path, command: Any, expected: int) -> None:
    """The command's exit code is reliable run's: the child's, 128+N on signal N, 127 not found, 126 not executable."""
    from reliable._cli import main

    assert expected == main(["run", "--quiet", "--", *command(isolated)])


def test_bad_webhook_url_is_reliables_own_error(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A webhook URL that is not http(s) exits 125 before the command runs."""
    from reliable._cli import main

    ran = isolated / "ran"

    assert 125 == main(["run", "--webhook", "ftp://example.com/x", "--", "touch", str(ran)])
    assert not ran.exists()
    assert "is not an http(s) URL" in capsys.readouterr().err


def test_unusable_name_is_reliables_own_error(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A name observed() refuses exits 125 without running the command, the message naming the parameter."""
    from reliable._cli import main

    ran = isolated / "ran"

    assert 125 == main(["run", "--name", "x" * 300, "--", "touch", str(ran)])
    assert not ran.exists()
    assert "name=" in capsys.readouterr().err


def test_unreachable_lock_store_is_reliables_own_error(isolated: Path) -> None:
    """--lock-store with a store that cannot be reached exits 125 without running the command."""
    from reliable._cli import main

    pytest.importorskip("redis", reason="needs the redis extra to get as far as connecting")
    ran = isolated / "ran"

    assert 125 == main(["run", "--lock", "--lock-store", "--store", "redis://127.0.0.1:1/0", "--", "touch", str(ran)])
    assert not ran.exists()


def test_retry_waits_are_backoff_with_full_jitter_on_the_library_clock(isolated: Path) -> None:
    """Retries sleep on the library clock: waits drawn in [0, min(wait_max, wait_initial * 2**(n-1))]."""
    from reliable._cli import main
    from reliable.testing import FakeClock, installed

    clock = FakeClock()
    with installed(clock):
        code = main(["run", "--quiet", "--retries", "3", "--wait-initial", "10", "--wait-max", "25", "--", "false"])

    assert 1 == code
    assert 3 == len(clock.sleeps)
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(clock.sleeps, [10, 20, 25], strict=True)), clock.sleeps


def test_deadline_bounds_the_retries(isolated: Path) -> None:
    """With --deadline, no retry starts after it: the waits add up to less than the deadline."""
    from reliable._cli import main
    from reliable.testing import FakeClock, installed

    clock = FakeClock()
    with installed(clock):
        code = main(["run", "--quiet", "--retries", "1000", "--wait-initial", "5", "--deadline", "60", "--", "false"])

    assert 1 == code
    assert 0 < len(clock.sleeps) < 1000
    assert sum(clock.sleeps) < 60


class _TerminatedInBackoff:
    """A fake clock whose first sleep is interrupted by a SIGTERM to this process (a supervisor stopping the job)."""

    def __init__(self) -> None:
        from reliable.testing import FakeClock

        self.clock = FakeClock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.clock, name)

    def sleep(self, seconds: float) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        self.clock.sleep(seconds)

    async def asleep(self, seconds: float) -> None:  # pragma: no cover - the command is sync
        await self.clock.asleep(seconds)


def test_sigterm_between_attempts_stops_with_128_plus_n(isolated: Path, tmp_path: Path) -> None:
    """SIGTERM during the wait between attempts stops the run at once: exit 143, no further attempt."""
    from reliable._cli import main
    from reliable.testing import installed

    counter = tmp_path / "count"
    with installed(_TerminatedInBackoff()):
        code = main(["run", "--quiet", "--retries", "5", "--", sys.executable, "-c", COUNTING, str(counter), "99", "1"])

    assert (128 + signal.SIGTERM, "1") == (code, counter.read_text())


def test_config_file_environment_and_flags(tmp_path: Path) -> None:
    """Store: flag, then $RELIABLE_STORE, then the file; webhooks from all three add up (JSON, INI and TOML files)."""
    import argparse

    from reliable._cli_config import load

    files = {
        "c.json": json.dumps({"store": "sqlite:///f.db", "alerts": {"webhook": ["http://h/json"]}}),
        "c.ini": "[reliable]\nstore = sqlite:///f.db\n[alerts]\nwebhook = http://h/ini\n",
        "c.toml": 'store = "sqlite:///f.db"\n[alerts]\nwebhook = ["http://h/toml"]\n',
    }
    seen = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        args = argparse.Namespace(config=str(tmp_path / name), store=None, webhook=["http://h/flag"], slack=[])
        env = {"RELIABLE_ALERT_WEBHOOK": "http://h/env1, http://h/env2"}
        from_file = load(args, env)
        from_env = load(args, {**env, "RELIABLE_STORE": "memory://"})
        from_flag = load(argparse.Namespace(**{**vars(args), "store": "sqlite:///flag.db"}), env)
        seen.append((from_file.store, from_env.store, from_flag.store, from_file.webhooks[-1]))

    assert [
        ("sqlite:///f.db", "memory://", "sqlite:///flag.db", f"http://h/{kind}") for kind in ("json", "ini", "toml")
    ] == seen
    assert ("http://h/flag", "http://h/env1", "http://h/env2") == from_file.webhooks[:3]


def test_bad_config_files_name_the_problem(tmp_path: Path) -> None:
    """A config file with an unknown extension, bad syntax or a non-URL store raises ConfigError saying so."""
    import argparse

    from reliable import ConfigError
    from reliable._cli_config import load

    cases = {"c.yaml": "store: x", "c.json": "{not json", "d.json": json.dumps({"store": "mysql://x"})}
    messages = []
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError) as error:
            load(argparse.Namespace(config=str(tmp_path / name), store=None, webhook=[], slack=[]), {})
        messages.append(str(error.value))

    assert "unknown extension" in messages[0]
    assert "is not valid JSON" in messages[1]
    assert "unknown scheme" in messages[2]


@pytest.mark.parametrize(
    ("exporter", "warning"), [("bogus", "is not supported"), ("otlp", "pip install opentelemetry-exporter-otlp")]
)
def test_unusable_trace_exporter_is_a_warning_not_an_error(
    exporter: str, warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An OTEL_TRACES_EXPORTER reliable cannot serve logs a warning with the fix and installs no provider."""
    from opentelemetry import trace

    from reliable._cli_config import tracing

    if exporter == "otlp":
        import importlib.util

        if importlib.util.find_spec("opentelemetry.exporter") is not None:
            pytest.skip("an OTLP exporter is installed; the warning is for when it is missing")
    before = trace.get_tracer_provider()
    with caplog.at_level(logging.WARNING, logger="reliable.run"), tracing({"OTEL_TRACES_EXPORTER": exporter}):
        during = trace.get_tracer_provider()

    assert before is during
    assert warning in caplog.text
