"""The engine of ``reliable run``: attempts of the child, the primitives around them, the exit code.

`execute` stacks `reliable.observed` → `reliable.single_instance` → `reliable.retry` around
`reliable._process.run_command` (the order DESIGN.md recommends), so the command gets the
same span, heartbeat, lock, backoff and alerts a decorated Python function gets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._internal import _clock, _telemetry
from ._process import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_TIMEOUT, Completed, on_forwarded_signals, run_command

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_LOCK_TIMEOUT",
    "CommandFailed",
    "CommandTimedOut",
    "Interrupted",
    "Settings",
    "execute",
]

EXIT_LOCK_TIMEOUT = 75
"""``--lock-wait`` ran out: EX_TEMPFAIL of sysexits.h ("try again later")."""
EXIT_INTERNAL = 125
"""``reliable`` itself failed (a bad setting, a store it needs is down), as ``timeout`` and ``env`` use 125."""
NOT_RETRIED_BY_DEFAULT = frozenset({EXIT_TIMEOUT, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND})


@dataclass(frozen=True)
class Settings:
    """One ``reliable run``, validated."""

    argv: list[str]
    name: str
    lock: str | None = None
    """None (no lock), ``"skip"`` (``--lock``) or ``"wait"`` (``--lock-wait``)."""
    lock_wait: float | None = None
    lock_store: bool = False
    skip_exit_code: int = 0
    retries: int = 0
    retry_on_exit: frozenset[int] | None = None
    wait_initial: float = 1.0
    wait_max: float = 60.0
    deadline: float | None = None
    timeout: float | None = None
    kill_after: float = 10.0
    max_age: float | None = None
    max_runtime: float | None = None
    tail: int = 4096
    alert: bool = True

    def retried(self, code: int) -> bool:
        """Whether a failed attempt with exit *code* is retried."""
        if self.retry_on_exit is not None:
            return code in self.retry_on_exit
        return code != 0 and code not in NOT_RETRIED_BY_DEFAULT


class CommandFailed(Exception):
    """An attempt of the command ended with a non-zero exit code.

    Raised inside ``reliable run`` so that `reliable.retry` and `reliable.observed` see a
    failure; ``returncode`` is the exit code and ``completed`` the whole `Completed`.
    """

    def __init__(self, message: str, completed: Completed) -> None:
        super().__init__(message)
        self.completed = completed
        self.returncode = completed.returncode


class CommandTimedOut(CommandFailed):
    """An attempt was stopped by ``--timeout`` or ``--deadline`` (exit code 124)."""


class Interrupted(BaseException):
    """``reliable run`` received *signum* between attempts: stop at once, retry nothing."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def _last_line(tail: str) -> str:
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


class _Runner:
    """Runs attempts of the child and remembers how the last one ended."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.program = os.path.basename(settings.argv[0]) or settings.argv[0]
        self.attempts = 0
        self.started: float | None = None
        self.last: Completed | None = None
        self.stopped_by: int | None = None
        self.observed_run: Any = None

    def attempt(self) -> Completed:
        s = self.settings
        clock = _clock.current()
        if self.started is None:
            self.started = clock.monotonic()
        self.attempts += 1
        timeout, by_deadline = s.timeout, False
        if s.deadline is not None:
            left = s.deadline - (clock.monotonic() - self.started)
            if timeout is None or left < timeout:
                timeout, by_deadline = max(left, 0.001), True
        done = run_command(s.argv, timeout=timeout, grace=s.kill_after, tail_bytes=s.tail)
        self.last = done
        if done.forwarded:
            self.stopped_by = done.forwarded[-1]
        if self.observed_run is not None:
            self.observed_run.set_attribute("process.exit.code", done.returncode)
        if done.returncode == 0:
            return done
        if done.timed_out:
            limit = f"the {s.deadline:g}s --deadline" if by_deadline else f"--timeout {s.timeout:g}s"
            message = f"{self.program} was stopped at {limit} (SIGTERM, then SIGKILL after {s.kill_after:g}s)"
            _telemetry.emit(
                "run",
                "timed_out",
                f"{s.name}: {message}",
                level=logging.WARNING,
                attributes={"reliable.operation": s.name, "reliable.run.attempt": self.attempts},
            )
            raise CommandTimedOut(message, done)
        message = f"{self.program} exited with code {done.returncode}"
        if done.returncode > 128 and done.returncode - 128 in signal.valid_signals():
            message += f" (killed by {signal.Signals(done.returncode - 128).name})"
        last = _last_line(done.tail)
        raise CommandFailed(f"{message}; last output: {last}" if last else message, done)

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, CommandFailed) and self.stopped_by is None and self.settings.retried(exc.returncode)


class _WithTail:
    """A sink that adds the command's exit code and output tail to failure alerts before handing them on."""

    def __init__(self, sink: Any, runner: _Runner) -> None:
        self.sink = sink
        self.runner = runner

    def __repr__(self) -> str:
        return repr(self.sink)

    def send(self, alert: Any) -> None:
        last = self.runner.last
        if last is not None and alert.kind in ("failure", "quota_exhausted"):
            details = {**alert.details, "exit_code": last.returncode, "attempts": self.runner.attempts}
            if last.tail:
                details["output_tail"] = last.tail
            alert = dataclasses.replace(alert, details=details)
        self.sink.send(alert)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Between attempts (waits, store I/O), the signals `run_command` forwards stop the run with `Interrupted`.

    While a child runs, `run_command` forwards them to it instead (and restores these handlers).
    """

    def stop(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    with on_forwarded_signals(stop):  # not the main thread: signals are left alone
        yield


def _pass_trace_context() -> None:
    """Give the child the run's span as its parent: ``TRACEPARENT`` / ``TRACESTATE`` in its environment."""
    try:
        from opentelemetry.propagate import inject

        carrier: dict[str, str] = {}
        inject(carrier)
        if "traceparent" in carrier:
            os.environ["TRACEPARENT"] = carrier["traceparent"]
            if carrier.get("tracestate"):
                os.environ["TRACESTATE"] = carrier["tracestate"]
    except Exception:  # telemetry never stops the command
        logging.getLogger("reliable.run").debug("could not pass the trace context", exc_info=True)


def _primitives(settings: Settings, runner: _Runner) -> tuple[Any, Any, Any]:
    """The observed operation, the lock (or None) and the retried attempt function."""
    from . import alerts
    from ._alerting import resolve_sinks
    from ._observed import observed
    from ._retry import retry
    from ._single_instance import single_instance

    s = settings
    policy: Any = False
    if s.alert:
        policy = alerts.Policy(sinks=[_WithTail(sink, runner) for sink in resolve_sinks(None)])
    operation = observed(
        s.name,
        max_age=s.max_age,
        max_runtime=s.max_runtime,
        heartbeat=True,
        alert=policy,
        attributes={"process.executable.name": runner.program},
    )
    lock = None
    if s.lock is not None:
        store = None
        if s.lock_store:
            from ._config import resolve_store

            store = resolve_store(None)
        lock = single_instance(s.name, store=store, on_conflict=s.lock, timeout=s.lock_wait)
    retried = retry(
        attempts=s.retries + 1,
        deadline=s.deadline,
        wait_initial=s.wait_initial,
        wait_max=s.wait_max,
        on=runner.retryable if s.retries else (lambda exc: False),
        name=s.name,
    )(runner.attempt)
    return operation, lock, retried


def execute(settings: Settings) -> int:
    """Run the command under the primitives; log the summary; return the exit code."""
    from . import alerts
    from ._errors import AlreadyRunningError, ReliableError
    from ._lease import SKIPPED

    runner = _Runner(settings)
    code, skipped, run = 0, False, None
    clock = _clock.current()
    started = clock.monotonic()
    try:
        operation, lock, retried = _primitives(settings, runner)
        with _interruptible(), operation as run:
            runner.observed_run = run
            _pass_trace_context()
            if lock is None:
                retried()
            else:
                with lock as lease:
                    if lease is SKIPPED:
                        skipped, code = True, settings.skip_exit_code
                    else:
                        retried()
    except CommandFailed as exc:
        code = exc.returncode
    except AlreadyRunningError:
        code = EXIT_LOCK_TIMEOUT
    except Interrupted as exc:
        code = 128 + exc.signum
    except ReliableError as exc:  # a bad setting, or a store the lock needs is down: reliable's own failure
        logging.getLogger("reliable.run").error("%s", exc)
        code = EXIT_INTERNAL
    alerts.flush()  # the alerts this run caused are out (or failed) before the summary line
    _summary(settings, runner, run, code, skipped, clock.monotonic() - started)
    return code


def _summary(settings: Settings, runner: _Runner, run: Any, code: int, skipped: bool, duration: float) -> None:
    outcome = getattr(run, "outcome", None) or "error"
    last = runner.last
    signals = [signal.Signals(n).name for n in last.forwarded] if last is not None else []
    what = "skipped" if skipped else f"{runner.attempts} attempt(s)"
    if signals:
        what += f", forwarded {', '.join(signals)}"
    _telemetry.emit(
        "run",
        "finished",
        f"{settings.name}: exit code {code} ({outcome}, {what}, {duration:.3f}s)",
        level=logging.INFO,
        attributes={
            "reliable.operation": settings.name,
            "reliable.outcome": outcome,
            "process.exit.code": code,
            "process.executable.name": runner.program,
            "reliable.run.attempts": runner.attempts,
            "reliable.run.skipped": skipped,
            "reliable.run.timed_out": bool(last is not None and last.timed_out),
            "reliable.run.signals": signals,
            "reliable.run_id": getattr(run, "run_id", None),
            "reliable.duration": round(duration, 6),
        },
    )
