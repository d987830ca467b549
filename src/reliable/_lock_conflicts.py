"""What `single_instance` does after a failed try (skip, wait or raise), and the events it reports.

Pure decisions come from `._lease_core`; this module adds the reporting: the INFO
``skipped`` event (which `observed` turns into the outcome ``skipped``), ``waited``,
``acquired``, and the messages of `AlreadyRunningError`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from typing import Any

from . import _lock_registry
from ._errors import AlreadyRunningError
from ._internal import _telemetry
from ._lease import SKIPPED, Lease, Skipped
from ._lease_core import Conflict, Settings, conflict_message, next_poll, skip_message

__all__ = ["after_conflict", "reentered", "report_acquired", "report_wait"]


def reentered(settings: Settings, owner: _lock_registry.Owner) -> AlreadyRunningError:
    """The error for a thread or task taking a lock it already holds."""
    who = "task" if owner[1] is not None else "thread"
    msg = (
        f"{settings.name!r} is already held by this same {who}; single_instance is not "
        "re-entrant: do not nest it, or give the inner use another name"
    )
    return AlreadyRunningError(msg, name=settings.name, reentrant=True)


def after_conflict(
    s: Settings, conflict: Conflict, elapsed: float, attempt: int, *, blocking: bool, registry_key: Hashable
) -> float | Skipped:
    """After a failed try: skip (report it), raise, or return how long to wait before the next try."""
    if s.on_conflict == "skip":
        _telemetry.emit(
            "single_instance",
            "skipped",
            skip_message(s.name, conflict.holders, limit=s.limit),
            level=logging.INFO,
            attributes=_holder_attributes(s.name, conflict),
        )
        return SKIPPED
    waited = elapsed if attempt else None
    if s.on_conflict == "wait":
        if blocking and conflict.in_process and _holder_on_this_thread(registry_key):
            msg = (
                f"{s.name!r} is held by another asyncio task on this thread; waiting here would block its "
                "event loop for ever: use 'async with' (or an async function) to wait for it"
            )
            raise AlreadyRunningError(msg, name=s.name)
        remaining = None if s.timeout is None else s.timeout - elapsed
        delay = next_poll(attempt, remaining=remaining, expires_in=conflict.expires_in)
        if delay is not None:
            return delay
        report_wait(s, elapsed, acquired=False)
    raise AlreadyRunningError(
        conflict_message(s.name, conflict.holders, limit=s.limit, waited=waited),
        name=s.name,
        holders=[h.as_dict() for h in conflict.holders],
    )


def _holder_on_this_thread(registry_key: Hashable) -> bool:
    me = threading.get_ident()
    return any(thread == me and task is not None for thread, task in _lock_registry.holders(registry_key).values())


def report_wait(s: Settings, elapsed: float, *, acquired: bool) -> None:
    """The ``waited`` event: how long a wait took and how it ended."""
    outcome = "acquired" if acquired else "gave up on"
    _telemetry.emit(
        "single_instance",
        "waited",
        f"waited {elapsed:.3f}s and {outcome} lock {s.name!r}",
        level=logging.INFO,
        attributes={
            "reliable.operation": s.name,
            "reliable.lock.waited_s": elapsed,
            "reliable.lock.acquired": acquired,
        },
    )


def report_acquired(s: Settings, lease: Lease, elapsed: float, attempt: int) -> Lease:
    """The ``acquired`` event (after ``waited`` if it waited); returns *lease*."""
    if attempt:
        report_wait(s, elapsed, acquired=True)
    if not _telemetry.enabled("single_instance", logging.DEBUG):
        _telemetry.count("single_instance", "acquired", lease.name)
        return lease
    _telemetry.emit(
        "single_instance",
        "acquired",
        f"acquired lock {lease.name!r} (token {lease.token})",
        level=logging.DEBUG,
        attributes={
            "reliable.operation": lease.name,
            "reliable.lock.token": lease.token,
            "reliable.lock.slot": lease.slot,
            "reliable.lock.backend": lease.backend,
        },
    )
    return lease


def _holder_attributes(name: str, conflict: Conflict) -> dict[str, Any]:
    attributes: dict[str, Any] = {"reliable.operation": name, "reliable.lock.holders": len(conflict.holders)}
    if conflict.holders:
        first = conflict.holders[0]
        attributes.update(
            {
                "reliable.lock.holder.pid": first.pid,
                "reliable.lock.holder.host": first.host,
                "reliable.lock.holder.since": first.since,
                "reliable.lock.token": first.token,
            }
        )
    return attributes
