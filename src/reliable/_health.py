"""`reliable.health()`: every known operation's state, judged from the store by whoever asks.

A dead process cannot report its own death, so staleness is decided by the reader (this
function, ``reliable status``, ``reliable check``) from the heartbeats in the store and
the store's own ``now()``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from . import _alerting
from ._config import StoreLike, resolve_store
from ._health_types import OperationHealth
from ._heartbeat import MAX_CAS, OP_PREFIX, RUN_PREFIX, Flow, Op, adrive, drive, judge

__all__ = ["ahealth", "health"]

_PROBLEM_ALERTS = {"failing": "failure", "stuck": "stuck", "stale": "stale", "degraded": "degraded"}
_log = logging.getLogger("reliable.observed")


def health(
    *, store: StoreLike | None = None, names: Iterable[str] | None = None, alert: bool = False
) -> dict[str, OperationHealth]:
    """The state of every operation that left heartbeats in the store, by name.

    Args:
        store: The store to read; default: the configured one.
        names: Only these operations (default: all).
        alert: Also fire alerts, through the sinks configured in *this* process, for every
            operation that is stale, stuck, failing or degraded (throttled per operation and
            kind like every alert, and followed by a recovery notice once the operation
            succeeds again). ``reliable check`` does this.

    Returns:
        `OperationHealth` by operation name, sorted by name.

    Raises:
        StoreError: the store cannot be read.

    >>> import reliable
    >>> from reliable.stores.memory import MemoryStore
    >>> store = MemoryStore()
    >>> @reliable.observed("nightly-export", max_age="1d", store=store, alert=False)
    ... def export() -> int:
    ...     return 3
    >>> export()
    3
    >>> reliable.health(store=store)["nightly-export"].state
    'ok'

    .. versionadded:: 0.1.0
    """
    resolved = resolve_store(store)
    result = drive(resolved, health_flow(names))
    if alert:
        for item in result.values():
            _alert_problems(resolved, item, store)
    return result


async def ahealth(*, store: StoreLike | None = None, names: Iterable[str] | None = None) -> dict[str, OperationHealth]:
    """The async twin of `health` (without *alert*).

    .. versionadded:: 0.1.0
    """
    return await adrive(resolve_store(store), health_flow(names))


def health_flow(names: Iterable[str] | None = None) -> Flow[dict[str, OperationHealth]]:
    """Read every summary and run in progress once, then judge each operation at the store's now."""
    wanted = None if names is None else set(names)
    now = yield Op("now")
    summaries = yield Op("scan", (OP_PREFIX,))
    runs = yield Op("scan", (RUN_PREFIX,))
    by_name: dict[str, dict[str, Any]] = {}
    for record in summaries:
        if isinstance(record.value, dict):
            by_name[record.key[len(OP_PREFIX) :]] = record.value
    running: dict[str, list[dict[str, Any]]] = {}
    for record in runs:
        value = record.value
        if isinstance(value, dict):
            name = str(value.get("name") or record.key[len(RUN_PREFIX) :].rpartition(":")[0])
            running.setdefault(name, []).append(value)
    known = sorted(set(by_name) | set(running))
    return {
        name: judge(name, by_name.get(name), running.get(name, []), float(now))
        for name in known
        if wanted is None or name in wanted
    }


def mark_open_flow(name: str, kinds: tuple[str, ...]) -> Flow[bool]:
    """Add *kinds* to the operation's open alerts (so its next success sends a recovery notice)."""
    key = OP_PREFIX + name
    for _ in range(MAX_CAS):
        current = yield Op("get", (key,))
        if current is None or not isinstance(current.value, dict):
            return False
        opened = list(current.value.get("open_alerts") or ())
        missing = [k for k in kinds if k not in opened]
        if not missing:
            return True
        value = {**current.value, "open_alerts": opened + missing}
        ttl = None if current.expires_at is None else max(current.expires_at - (yield Op("now")), 1.0)
        if (yield Op("compare_and_set", (key, value), {"version": current.version, "ttl": ttl})) is not None:
            return True
    return False


def _alert_problems(store: Any, item: OperationHealth, store_like: StoreLike | None) -> None:
    kinds = tuple(_PROBLEM_ALERTS[p] for p in item.problems if p in _PROBLEM_ALERTS)
    if not kinds:
        return
    from .alerts import Policy

    throttle = Policy().throttle_seconds
    for kind in kinds:
        message = f"{item.name} is {_PROBLEM_NAMES[kind]}: {item.reason}"
        failure = item.last_failure
        alert = _alerting.Alert.make(
            kind,
            item.name,
            message,
            error=failure.error if failure and kind == "failure" else None,
            last_success=item.last_success,
            max_age=item.max_age,
        )
        _alerting.fire(alert, sinks=None, throttle=throttle, store=store_like)
    try:
        drive(store, mark_open_flow(item.name, kinds))
    except Exception as exc:
        _log.warning("could not mark the %s alerts of %r open in the store: %s", kinds, item.name, exc)


_PROBLEM_NAMES = {"failure": "failing", "stuck": "stuck", "stale": "stale", "degraded": "degraded"}
