"""``reliable status`` and ``reliable check``: the health of every observed operation, from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._health_types import OperationHealth

__all__ = ["add_check_arguments", "add_status_arguments", "check", "status"]

STATUS_HELP = "show every observed operation: last success and failure, outcome, staleness, runs and lock holders"
CHECK_HELP = "exit 0 if every observed operation is healthy, 1 if one is stale/stuck/failing/degraded, 2 if unreadable"
EXIT_OK, EXIT_UNHEALTHY, EXIT_UNREACHABLE = 0, 1, 2


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="URL", help="store URL (default: $RELIABLE_STORE, the config file, or embedded SQLite)"
    )
    parser.add_argument("--config", metavar="FILE", help="config file, JSON, INI or TOML (default: $RELIABLE_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    from ._cli_config import add_config_arguments

    add_config_arguments(parser)  # --store, --config, --webhook, --slack: the same sources as `reliable run`
    parser.add_argument("--name", action="append", metavar="NAME", help="check only this operation (repeatable)")
    parser.add_argument("--no-alert", action="store_true", help="do not send alerts for the problems found")
    parser.add_argument("--quiet", action="store_true", help="print only problems")


def _where(url: str | None) -> str:
    if url:
        return url
    from .stores import default_path

    return f"sqlite:///{default_path()}"


def _read(args: argparse.Namespace, *, alert: bool = False) -> tuple[Any, dict[str, OperationHealth]] | None:
    """The store and the health of its operations, or None (after saying why) if the store cannot be read.

    The store comes from ``--store``, ``RELIABLE_STORE`` or the config file (``--config`` or
    ``RELIABLE_CONFIG``), as for ``reliable run``; with *alert*, the config's sinks (the log,
    plus every webhook of the flags, environment and file) receive the alerts.
    """
    from ._cli_config import load
    from ._config import configured, resolve_store
    from ._health import health

    url = getattr(args, "store", None)
    try:
        config = load(args)
        url = config.store
        store = resolve_store(url)
        with configured(alerts=config.sinks() if alert else None):
            return store, health(store=store, names=getattr(args, "name", None), alert=alert)
    except Exception as exc:
        print(f"reliable: cannot read the store {_where(url)}: {exc}", file=sys.stderr)
        return None


# -- status -------------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    """``reliable status``: a table (or JSON) of every operation; exit code 0, or 2 if the store cannot be read."""
    read = _read(args)
    if read is None:
        return EXIT_UNREACHABLE
    store, found = read
    locks = lock_holders(store)
    if args.json:
        operations = [{**h.to_dict(), "lock_holders": _holders_of(h.name, locks)} for h in found.values()]
        print(json.dumps({"store": _where(args.store), "operations": operations, "locks": locks}, indent=2))
    else:
        print(render_table(list(found.values()), locks))
    return EXIT_OK


def ago(when: float | None, now: float) -> str:
    """``"never"``, ``"12s ago"``, ``"5m ago"``, ``"3h ago"``, ``"2d ago"``."""
    if when is None:
        return "never"
    seconds = max(now - when, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def render_table(operations: list[OperationHealth], locks: list[dict[str, Any]]) -> str:
    """The ``reliable status`` table, plus the locks held by operations it does not list."""
    if not operations and not locks:
        return "no observed operations with heartbeats in this store"
    header = ("OPERATION", "STATE", "LAST SUCCESS", "LAST FAILURE", "OUTCOME", "STALE", "RUNS", "LOCK HOLDERS")
    rows = [header]
    for h in operations:
        failure = h.last_failure
        last_failure = "never" if failure is None else f"{ago(failure.time, h.checked_at)} ({failure.error_type})"
        stale = "-" if h.max_age is None else ("yes" if h.stale else "no")
        holders = ", ".join(_describe(x) for x in _holders_of(h.name, locks)) or "-"
        rows.append(
            (
                h.name,
                ",".join(h.problems) or "ok",
                ago(h.last_success, h.checked_at),
                last_failure,
                h.last_outcome or "-",
                stale,
                str(len(h.running)),
                holders,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    known = {h.name for h in operations}
    others = [x for x in locks if x.get("name") not in known]
    if others:
        lines += ["", "locks held:"] + [f"  {x.get('name')}: {_describe(x)}" for x in others]
    return "\n".join(lines)


def lock_holders(store: Any) -> list[dict[str, Any]]:
    """Who holds the `reliable.single_instance` locks: file locks of this host and leases in *store*.

    Tolerates lock modules that are missing or fail: the listing is informative only.
    """
    found: list[dict[str, Any]] = []
    try:
        from ._lock_dir import lock_holders as file_lock_holders

        found += [{**entry, "kind": "file"} for entry in file_lock_holders()]
    except Exception:  # the lock directory may be unreadable: status still works
        pass
    try:
        from ._lease_core import KEY_PREFIX, holder_from_record

        for record in store.scan(KEY_PREFIX):
            name = record.key[len(KEY_PREFIX) :].rpartition(":")[0]
            holder = holder_from_record(name, record)
            found.append({**holder.as_dict(), "kind": "store"})
    except Exception:  # no lease support or an unreadable record: status still works
        pass
    return found


def _holders_of(name: str, locks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x for x in locks if x.get("name") == name]


def _describe(holder: dict[str, Any]) -> str:
    parts = [f"pid {holder.get('pid')}" if holder.get("pid") is not None else "unknown process"]
    if holder.get("host"):
        parts.append(f"on {holder['host']}")
    return " ".join(parts)


# -- check ----------------------------------------------------------------------------------


def check(args: argparse.Namespace) -> int:
    """``reliable check``: 0 healthy, 1 stale/stuck/failing/degraded (or a --name never seen), 2 unreadable store."""
    from . import alerts

    alert = not args.no_alert
    read = _read(args, alert=alert)
    if read is None:
        return EXIT_UNREACHABLE
    _, found = read
    missing = sorted(set(args.name or ()) - set(found))
    bad = [h for h in found.values() if not h.healthy]
    for h in bad:
        print(f"{h.state.upper()} {h.name}: {h.reason}")
    for name in missing:
        print(f"UNKNOWN {name}: no heartbeat in this store; has it ever run with max_age or heartbeat=True?")
    if not args.quiet and not bad and not missing:
        print(f"OK: {len(found)} operation(s) healthy")
    if alert:
        alerts.flush()
    return EXIT_UNHEALTHY if bad or missing else EXIT_OK
