"""The ``reliable`` command (console script and ``python -m reliable``).

Each subcommand is one `Command` in `COMMANDS`: a name, a one-line help, a function
that adds its arguments to an `argparse` parser, and a function that runs it and
returns the exit code. A new subcommand is one more entry (its code in its own module).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import _cli_migrate, _cli_run, _cli_status, _demo

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    """One subcommand of ``reliable``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: tuple[Command, ...] = (
    Command("status", _cli_status.STATUS_HELP, _cli_status.add_status_arguments, _cli_status.status),
    Command("check", _cli_status.CHECK_HELP, _cli_status.add_check_arguments, _cli_status.check),
    Command("run", _cli_run.RUN_HELP, _cli_run.add_run_arguments, _cli_run.run),
    Command("demo", _demo.DEMO_HELP, _demo.add_demo_arguments, _demo.demo),
    Command("migrate", _cli_migrate.MIGRATE_HELP, _cli_migrate.add_migrate_arguments, _cli_migrate.migrate),
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command, with one subparser per entry of `COMMANDS`."""
    from importlib.metadata import version

    parser = argparse.ArgumentParser(
        prog="reliable", description="Inspect and monitor the operations `reliable` observes, from the shell."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('reliable')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``reliable`` with *argv* (default: the process's arguments) and return the exit code.

    .. versionadded:: 0.1.0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = args.run(args)
    return code
