"""``reliable run [options] -- CMD [ARGS...]``: run any command as an observed, locked, retried, time-bounded operation.

The command runs inside the same primitives a Python job stacks, outermost first::

    observed(name, heartbeat=True, max_age=...)      span, outcome, heartbeat, alerts
      single_instance(name, on_conflict=skip|wait)   --lock / --lock-wait
        retry(attempts=retries + 1, deadline=...)    --retries, --retry-on-exit
          run_command(argv, timeout=...)             own process group, output passed through

Exit codes (the child's own code whenever the child ran to the end):

=====  =====================================================================
0..    the child's exit code (after retries: the last attempt's)
2      the command line of ``reliable run`` is wrong (argparse usage error)
75     ``--lock-wait`` timed out: another run held the lock (EX_TEMPFAIL)
124    ``--timeout`` or ``--deadline`` stopped the child (as GNU ``timeout``)
125    ``reliable`` itself failed: bad config file, store URL, webhook URL or name; lock store down
126    the command is not executable; 127: it was not found
128+N  the child died of signal N, or ``reliable run`` was stopped by signal N
--skip-exit-code (default 0)   ``--lock`` found another run holding the lock
=====  =====================================================================

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from . import _cli_run_attempt as attempt
from ._cli_config import add_config_arguments, load, logging_to_stderr, tracing
from ._cli_run_attempt import EXIT_INTERNAL, EXIT_LOCK_TIMEOUT, Settings
from ._errors import ConfigError
from ._internal._durations import seconds

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_LOCK_TIMEOUT",
    "EXIT_USAGE",
    "RUN_HELP",
    "add_run_arguments",
    "default_name",
    "parse_codes",
    "run",
    "settings_from",
]

RUN_HELP = "run a command as a system: lock, retries, timeout, heartbeat, alerts (reliable run [options] -- CMD)"
EXIT_USAGE = 2
_log = logging.getLogger("reliable.run")


def _duration(name: str, *, allow_zero: bool = False) -> Any:
    def parse(text: str) -> float:
        value: float | str
        try:
            value = float(text)
        except ValueError:
            value = text
        try:
            return seconds(value, name, allow_zero=allow_zero)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "duration"
    return parse


def _count(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            msg = f"{text!r} is not an integer from {low} to {high}"
            raise argparse.ArgumentTypeError(msg)
        return value

    parse.__name__ = "integer"
    return parse


def parse_codes(text: str) -> frozenset[int]:
    """``"1,75,100-110"`` as a set of exit codes (1 to 255).

    Raises:
        argparse.ArgumentTypeError: a part is not a code or range of codes from 1 to 255.
    """
    codes: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            first, last = 0, -1
        if not 1 <= first <= last <= 255:
            msg = f"--retry-on-exit: {part!r} is not an exit code or range from 1 to 255; pass e.g. 1,75,100-110"
            raise argparse.ArgumentTypeError(msg)
        codes.update(range(first, last + 1))
    return frozenset(codes)


def default_name(argv: list[str]) -> str:
    """The operation name of a command: its program's base name and a short hash of the whole command line."""
    import hashlib
    import json
    import os

    digest = hashlib.sha256(json.dumps(argv).encode()).hexdigest()[:8]
    base = os.path.basename(argv[0].rstrip("/")) or "command"
    return f"{base[:100]}-{digest}"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``reliable run``."""
    parser.usage = "reliable run [options] -- CMD [ARGS...]"
    parser.add_argument(
        "--name", help="operation name: lock, heartbeat, alerts (default: CMD's base name and a hash of the command)"
    )
    lock = parser.add_argument_group("overlap (like flock -n / -w)")
    lock.add_argument("--lock", action="store_true", help="skip this run if another run of NAME holds the lock")
    lock.add_argument(
        "--lock-wait",
        type=_duration("--lock-wait", allow_zero=True),
        metavar="SECONDS",
        help=f"wait up to SECONDS for the lock, then exit {EXIT_LOCK_TIMEOUT} without running",
    )
    lock.add_argument(
        "--skip-exit-code", type=_count(0, 255), default=0, metavar="N", help="exit code of a skipped run"
    )
    lock.add_argument("--lock-store", action="store_true", help="hold the lock as a lease in the store (many hosts)")
    retries = parser.add_argument_group("retries")
    retries.add_argument("--retries", type=_count(0, 1000), default=0, metavar="N", help="retry up to N times")
    retries.add_argument(
        "--retry-on-exit",
        type=parse_codes,
        metavar="CODES",
        help="retry only these exit codes, e.g. 1,75,100-110 (default: every failure but 124, 126, 127)",
    )
    retries.add_argument("--wait-initial", type=_duration("--wait-initial"), default=1.0, metavar="SECONDS")
    retries.add_argument("--wait-max", type=_duration("--wait-max"), default=60.0, metavar="SECONDS")
    retries.add_argument(
        "--deadline",
        type=_duration("--deadline"),
        metavar="SECONDS",
        help="bound all attempts and waits together; an attempt still running then is stopped (exit 124)",
    )
    limits = parser.add_argument_group("time limits")
    limits.add_argument("--timeout", type=_duration("--timeout"), metavar="SECONDS", help="stop an attempt after this")
    limits.add_argument(
        "--kill-after",
        type=_duration("--kill-after", allow_zero=True),
        default=10.0,
        metavar="SECONDS",
        help="SIGKILL this long after the SIGTERM of a timeout (default 10)",
    )
    health = parser.add_argument_group("health and alerts")
    health.add_argument(
        "--max-age", type=_duration("--max-age"), metavar="SECONDS", help="stale without a success this often"
    )
    health.add_argument(
        "--max-runtime", type=_duration("--max-runtime"), metavar="SECONDS", help="stuck if a run lasts longer"
    )
    health.add_argument(
        "--tail", type=_count(0, 1 << 20), default=4096, metavar="BYTES", help="output kept for the failure alert"
    )
    health.add_argument("--no-alert", action="store_true", help="send no alerts (heartbeats are still recorded)")
    add_config_arguments(health)
    output = parser.add_argument_group("output (on stderr; the child's stdout stays clean)")
    output.add_argument("--json", action="store_true", help="log lines and the final summary as JSON objects")
    output.add_argument("--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]", help="the command to run")


def settings_from(args: argparse.Namespace) -> Settings:
    """The run's `Settings` from parsed arguments (the command may start with ``--``).

    Raises:
        ConfigError: no command was given.
    """
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        msg = "no command given; usage: reliable run [options] -- CMD [ARGS...]"
        raise ConfigError(msg, parameter="command")
    return Settings(
        argv=argv,
        name=args.name or default_name(argv),
        lock="wait" if args.lock_wait is not None else ("skip" if args.lock else None),
        lock_wait=args.lock_wait,
        lock_store=args.lock_store,
        skip_exit_code=args.skip_exit_code,
        retries=args.retries,
        retry_on_exit=args.retry_on_exit,
        wait_initial=args.wait_initial,
        wait_max=max(args.wait_max, args.wait_initial),
        deadline=args.deadline,
        timeout=args.timeout,
        kill_after=args.kill_after,
        max_age=args.max_age,
        max_runtime=args.max_runtime,
        tail=args.tail,
        alert=not args.no_alert,
    )


def run(args: argparse.Namespace) -> int:
    """``reliable run``: run the command and return the exit code of the mapping above."""
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        print(f"reliable run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with logging_to_stderr(as_json=args.json, level=logging.WARNING if args.quiet else logging.INFO):
        try:
            config = load(args)
        except ConfigError as exc:
            _log.error("%s", exc)
            return EXIT_INTERNAL
        from ._config import configured

        with configured(store=config.store, alerts=config.sinks()), tracing():
            return attempt.execute(settings)
