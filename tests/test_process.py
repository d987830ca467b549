"""The child-process runner of `reliable run`: exit codes, output tail, timeout of the whole tree, signals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reliable._process import EXIT_NOT_FOUND, EXIT_TIMEOUT, run_command

pytestmark = pytest.mark.processes


def _run(script: str, **kwargs: object) -> tuple[object, bytes]:
    out = io.BytesIO()
    done = run_command(["sh", "-c", script], stdout=out, stderr=out, **kwargs)  # type: ignore[arg-type]
    return done, out.getvalue()


def test_exit_code_and_output_pass_through() -> None:
    """The child's exit code is the result's; its stdout and stderr pass through and are kept in the tail."""
    done, out = _run("echo hello; echo oops >&2; exit 3")

    assert 3 == done.returncode  # type: ignore[attr-defined]
    assert b"hello\n" in out
    assert b"oops\n" in out
    assert "hello" in done.tail  # type: ignore[attr-defined]


def test_tail_keeps_only_the_last_bytes() -> None:
    """The tail keeps at most tail_bytes of the most recent output."""
    done, _ = _run("i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done", tail_bytes=100)

    assert len(done.tail) <= 100  # type: ignore[attr-defined]
    assert done.tail.endswith("line1999\n")  # type: ignore[attr-defined]


def test_signal_death_maps_to_128_plus_n() -> None:
    """A child killed by signal N reports 128 + N, as shells do."""
    done, _ = _run("kill -TERM $$")

    assert 128 + signal.SIGTERM == done.returncode  # type: ignore[attr-defined]


def test_command_not_found_is_127() -> None:
    """A missing command reports 127 with a message in the tail instead of raising."""
    done = run_command(["/nonexistent/command-xyz"])

    assert EXIT_NOT_FOUND == done.returncode
    assert "command not found" in done.tail


def test_timeout_kills_the_child_and_its_children(tmp_path: Path) -> None:
    """On timeout the whole process group gets SIGTERM (then SIGKILL), grandchildren included; exit code 124."""
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 30 & echo $! > {pidfile}; trap '' TERM; wait"

    done, _ = _run(script, timeout=0.3, grace=0.2)

    grandchild = int(pidfile.read_text())
    assert (EXIT_TIMEOUT, True) == (done.returncode, done.timed_out)  # type: ignore[attr-defined]
    assert not _alive(grandchild)


def test_sigterm_to_the_runner_is_forwarded(tmp_path: Path) -> None:
    """SIGTERM sent to the process running the command is forwarded to the child, which can clean up."""
    marker = tmp_path / "got-term"
    ready = tmp_path / "ready"
    child = f"trap 'echo term > {marker}; exit 0' TERM; touch {ready}; while true; do sleep 0.01; done"
    runner = textwrap.dedent(
        f"""
        import sys
        from reliable._process import run_command
        done = run_command(["sh", "-c", {child!r}])
        print(done.returncode, done.forwarded)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", runner], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)

    assert marker.read_text().strip() == "term"
    assert f"0 ({int(signal.SIGTERM)},)" == out.strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
