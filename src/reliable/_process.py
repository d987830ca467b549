"""Run a child command for ``reliable run``: pass its output through, keep a tail, forward signals, enforce a timeout.

The child runs in a new session (its own process group), so a timeout or a forwarded
signal reaches the whole tree it started, and nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ._internal import _clock

__all__ = ["EXIT_NOT_EXECUTABLE", "EXIT_NOT_FOUND", "EXIT_TIMEOUT", "Completed", "on_forwarded_signals", "run_command"]

EXIT_TIMEOUT = 124
"""Exit code of a run stopped by ``--timeout`` (as GNU ``timeout`` uses)."""
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


@dataclass(frozen=True)
class Completed:
    """How one run of the child ended."""

    returncode: int
    """The exit code ``reliable run`` reports: the child's, ``128 + N`` if signal N killed it, 124 on timeout."""
    timed_out: bool
    forwarded: tuple[int, ...]
    """Signals received and forwarded to the child's process group."""
    duration: float
    tail: str
    """The last bytes of the child's stdout and stderr, interleaved as read, for alerts."""


def run_command(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    grace: float = 5.0,
    tail_bytes: int = 4096,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
) -> Completed:
    """Run *argv* to completion and return how it ended.

    Args:
        argv: The command and its arguments (no shell).
        timeout: Seconds after which the child's process group gets SIGTERM, then SIGKILL after *grace*.
        grace: Seconds between SIGTERM and SIGKILL on timeout.
        tail_bytes: How much of the combined output to keep for `Completed.tail`.
        stdout: Where the child's stdout goes (default: this process's stdout).
        stderr: Where the child's stderr goes (default: this process's stderr).
    """
    clock = _clock.current()
    started = clock.monotonic()
    tail: deque[bytes] = deque()
    tail_size = [0]
    lock = threading.Lock()

    def keep(chunk: bytes) -> None:
        with lock:
            tail.append(chunk)
            tail_size[0] += len(chunk)
            while tail_size[0] - len(tail[0]) >= tail_bytes and len(tail) > 1:
                tail_size[0] -= len(tail.popleft())

    forwarded: list[int] = []
    early: list[int] = []
    box: list[subprocess.Popen[bytes]] = []
    timed_out = False
    # Forwarding starts before the child does: a supervisor's SIGTERM that lands while the
    # child is being started must reach it, not kill this process and orphan the child.
    with _forwarding(box, forwarded, early):
        try:
            proc = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, close_fds=True
            )
        except FileNotFoundError as exc:
            msg = f"reliable run: command not found: {argv[0]!r} ({exc.strerror})\n"
            return Completed(EXIT_NOT_FOUND, False, tuple(forwarded), clock.monotonic() - started, msg)
        except PermissionError as exc:
            msg = f"reliable run: cannot execute {argv[0]!r} ({exc.strerror})\n"
            return Completed(EXIT_NOT_EXECUTABLE, False, tuple(forwarded), clock.monotonic() - started, msg)
        box.append(proc)  # from here on the handler forwards by itself
        for signum in early:  # what came while the child was starting
            _signal_group(proc, signum)

        assert proc.stdout is not None
        assert proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, stdout or sys.stdout.buffer, keep), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, stderr or sys.stderr.buffer, keep), daemon=True),
        ]
        try:
            for pump in pumps:
                pump.start()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _stop(proc, grace)
        except BaseException:
            # An exception here (a signal handler of the caller that raised, say) must not
            # leave the child's group running on its own.
            _stop(proc, grace)
            raise
    for pump in pumps:
        pump.join(timeout=5)
    code = proc.returncode
    if timed_out:
        code = EXIT_TIMEOUT
    elif code < 0:
        code = 128 - code
    text = b"".join(tail)[-tail_bytes:].decode("utf-8", "replace")
    return Completed(code, timed_out, tuple(forwarded), clock.monotonic() - started, text)


def _pump(source: IO[bytes], sink: IO[bytes], keep: Any) -> None:
    """Copy the child's output to *sink* as it comes, keeping a tail."""
    with contextlib.suppress(OSError, ValueError):
        for chunk in iter(lambda: source.read1(65536) if hasattr(source, "read1") else source.read(65536), b""):
            keep(chunk)
            with contextlib.suppress(OSError, ValueError):
                sink.write(chunk)
                sink.flush()


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, SIGKILL it after *grace* seconds, and reap the child."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    # Whatever the leader left behind in its group goes too.
    _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


@contextlib.contextmanager
def _forwarding(box: list[subprocess.Popen[bytes]], forwarded: list[int], early: list[int]) -> Iterator[None]:
    """Forward the usual supervisor signals to the child's process group (main thread only).

    Until the child exists (*box* is empty) a signal is only recorded in *early*, for the
    caller to send once it has started the child.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: object) -> None:
        forwarded.append(signum)
        if box:
            _signal_group(box[0], signum)
        else:
            early.append(signum)

    with on_forwarded_signals(forward):
        yield


@contextlib.contextmanager
def on_forwarded_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Handle the `FORWARDED` signals with *handler* while the block runs, then restore the previous handlers.

    Off the main thread (or for a signal the platform refuses) the handlers are left alone.
    """
    previous = {}
    for signum in FORWARDED:
        with contextlib.suppress(OSError, ValueError):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
