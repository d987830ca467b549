"""Heartbeats of observed operations: what is stored, the pure decisions, and the store flows.

Keys (a documented prefix per kind of record, so ``reliable status`` can scan them):

- ``reliable:op:<name>`` — the operation's summary: last start, success, failure (time,
  error, duration), last outcome, consecutive failures and successes, whether it is
  *failing*, and the alerts still open (waiting for a recovery notice);
- ``reliable:run:<name>:<run_id>`` — a run in progress (start, last renewal, host, pid),
  deleted when the run ends, so concurrent runs are tracked separately;
- ``reliable:alert:<name>:<kind>`` — an alert throttle mark (see `reliable._alerting`).

The decisions (`apply_finish` here, `judge` in `reliable._health_judge`, re-exported) are
pure functions of the records and the store's ``now()``. The store I/O is written once,
as generators of `Op` s that `drive` runs against a `Store` and `adrive` against an
`AsyncStore`.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._health_judge import judge

__all__ = ["OP_PREFIX", "RUN_PREFIX", "Finish", "Op", "Spec", "Transition", "adrive", "apply_finish", "drive", "judge"]

OP_PREFIX = "reliable:op:"
RUN_PREFIX = "reliable:run:"
SUMMARY_TTL_MIN = 30 * 86400.0
"""An operation not seen for this long (or 3 x its *max_age*, if longer) is forgotten."""
RUN_TTL_DEFAULT = 86400.0
"""A run record without *max_runtime* expires after a day; with it, after 3 x *max_runtime*."""
MAX_CAS = 20

T = TypeVar("T")
Flow = Generator["Op", Any, T]


@dataclass(frozen=True)
class Op:
    """One store call of a flow: the method name of `Store` (``"get"``) plus its arguments."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def drive(store: Any, flow: Flow[T]) -> T:
    """Run *flow* against a blocking store."""
    try:
        op = next(flow)
        while True:
            op = flow.send(getattr(store, op.method)(*op.args, **op.kwargs))
    except StopIteration as stop:
        result: T = stop.value
        return result


async def adrive(store: Any, flow: Flow[T]) -> T:
    """Run *flow* against an async store (its ``a``-prefixed methods), or a blocking one if it has none."""
    if not hasattr(store, "aget"):
        return drive(store, flow)
    try:
        op = next(flow)
        while True:
            op = flow.send(await getattr(store, "a" + op.method)(*op.args, **op.kwargs))
    except StopIteration as stop:
        result: T = stop.value
        return result


@dataclass(frozen=True)
class Spec:
    """What an observed operation promises: judged by whoever reads its heartbeats."""

    name: str
    max_age: float | None = None
    max_runtime: float | None = None
    failing_after: int = 1
    recover_after: int = 2

    @property
    def key(self) -> str:
        return OP_PREFIX + self.name

    def run_key(self, run_id: str) -> str:
        return f"{RUN_PREFIX}{self.name}:{run_id}"

    @property
    def run_ttl(self) -> float:
        return 3 * self.max_runtime if self.max_runtime else RUN_TTL_DEFAULT

    @property
    def summary_ttl(self) -> float:
        return max(SUMMARY_TTL_MIN, 3 * (self.max_age or 0.0))


@dataclass(frozen=True)
class Finish:
    """How one run ended, in store time."""

    run_id: str
    started_at: float
    duration: float
    outcome: str
    error: str | None = None
    error_type: str | None = None
    kind: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Transition:
    """What a finished run changes for alerting: alert kinds to fire, and open kinds that recovered."""

    fire: tuple[str, ...] = ()
    recovered: tuple[str, ...] = ()


def apply_finish(summary: dict[str, Any] | None, fin: Finish, spec: Spec) -> tuple[dict[str, Any], Transition]:
    """The summary after *fin*, and the alerts it causes. Pure.

    A run that raised counts toward *failing_after* consecutive failures; once *failing*,
    the operation needs *recover_after* consecutive successes to be healthy again, so an
    operation that alternates between failing and succeeding does not flap. Quota
    exhaustion alerts at once. A skipped run changes nothing but ``last_skip``.
    """
    s = dict(summary or {})
    s.setdefault("first_seen", fin.started_at)
    s.update(
        name=spec.name,
        max_age=spec.max_age,
        max_runtime=spec.max_runtime,
        failing_after=spec.failing_after,
        recover_after=spec.recover_after,
    )
    end = fin.started_at + fin.duration
    if fin.outcome == "skipped":
        s["last_skip"] = end
        return s, Transition()
    opened = list(s.get("open_alerts") or ())
    failures = int(s.get("consecutive_failures") or 0)
    successes = int(s.get("consecutive_successes") or 0)
    failing = bool(s.get("failing"))
    fire: list[str] = []
    recovered: list[str] = []
    if fin.outcome == "ok":
        s["last_success"] = end
        failures, successes = 0, successes + 1
        if failing and successes >= spec.recover_after:
            failing = False
        if not failing and opened:
            recovered, opened = opened, []
    elif fin.outcome == "error":
        s["last_failure"] = {
            "time": end,
            "error": fin.error,
            "error_type": fin.error_type,
            "kind": fin.kind,
            "duration": fin.duration,
            "run_id": fin.run_id,
        }
        failures, successes = failures + 1, 0
        failing = failing or failures >= spec.failing_after
        if fin.kind == "quota_exhausted":
            fire.append("quota_exhausted")
        elif failing:
            fire.append("failure")
    else:  # degraded
        s["last_degraded"] = {"time": end, "reason": fin.reason, "run_id": fin.run_id}
        successes = 0
        fire.append("degraded")
    for kind in fire:
        if kind not in opened:
            opened.append(kind)
    s.update(
        last_start=max(float(s.get("last_start") or 0.0), fin.started_at),
        last_finish=end,
        last_outcome=fin.outcome,
        last_duration=fin.duration,
        last_run_id=fin.run_id,
        consecutive_failures=failures,
        consecutive_successes=successes,
        failing=failing,
        open_alerts=opened,
    )
    return s, Transition(tuple(fire), tuple(recovered))


# -- flows: the store I/O, written once ------------------------------------------------


def start_flow(spec: Spec, record: dict[str, Any]) -> Flow[tuple[float, int]]:
    """Record a run in progress; return the store time it started and the run record's version."""
    now = yield Op("now")
    written = yield Op(
        "set", (spec.run_key(record["run_id"]), {**record, "started_at": now, "touched_at": now}), {"ttl": spec.run_ttl}
    )
    return float(now), int(written.version)


def touch_flow(spec: Spec, record: dict[str, Any], version: int) -> Flow[int | None]:
    """Mark a run in progress as alive (its lock was renewed); None if the run record is gone."""
    now = yield Op("now")
    written = yield Op(
        "compare_and_set",
        (spec.run_key(record["run_id"]), {**record, "touched_at": now}),
        {"version": version, "ttl": spec.run_ttl},
    )
    return None if written is None else int(written.version)


def finish_flow(spec: Spec, fin: Finish) -> Flow[Transition]:
    """Delete the run record and fold *fin* into the summary with compare-and-set (safe across processes)."""
    yield Op("delete", (spec.run_key(fin.run_id),))
    for _ in range(MAX_CAS):
        current = yield Op("get", (spec.key,))
        summary, transition = apply_finish(None if current is None else current.value, fin, spec)
        if current is None:
            _, created = yield Op("put_if_absent", (spec.key, summary), {"ttl": spec.summary_ttl})
            if created:
                return transition
        else:
            written = yield Op(
                "compare_and_set", (spec.key, summary), {"version": current.version, "ttl": spec.summary_ttl}
            )
            if written is not None:
                return transition
    from ._errors import StoreError

    msg = f"heartbeat of {spec.name!r} lost {MAX_CAS} compare-and-set races in a row; what else writes {spec.key!r}?"
    raise StoreError(msg, name=spec.name)
