"""`judge`: an observed operation's health, decided by the reader from its heartbeat records. Pure.

A dead process cannot report its own death, so whoever reads the store (`reliable.health()`,
``reliable status``, ``reliable check``) judges the records `reliable._heartbeat` writes,
at the store's ``now()``.
"""

from __future__ import annotations

from typing import Any

from ._health_types import Failure, OperationHealth, RunInfo

__all__ = ["judge"]


def judge(name: str, summary: dict[str, Any] | None, runs: list[dict[str, Any]], now: float) -> OperationHealth:
    """The health of operation *name* at store time *now*, from its summary and its runs in progress. Pure.

    States, worst first: ``failing`` (the last *failing_after* runs failed, and fewer than
    *recover_after* have succeeded since), ``stuck`` (a run has neither finished nor renewed
    within *max_runtime*), ``stale`` (no success within *max_age*), ``degraded`` (the last run
    failed its ``expect=`` check), else ``ok``.
    """
    s = summary or {}
    max_age = _number(s.get("max_age"))
    max_runtime = _number(s.get("max_runtime"))
    for run in runs:
        max_age = max_age if max_age is not None else _number(run.get("max_age"))
        max_runtime = max_runtime if max_runtime is not None else _number(run.get("max_runtime"))
    running = tuple(
        sorted(
            (
                RunInfo(
                    run_id=str(r.get("run_id")),
                    started_at=float(r.get("started_at") or 0.0),
                    touched_at=float(r.get("touched_at") or r.get("started_at") or 0.0),
                    host=str(r.get("host") or ""),
                    pid=int(r.get("pid") or 0),
                )
                for r in runs
            ),
            key=lambda r: (r.started_at, r.run_id),
        )
    )
    last_success = _number(s.get("last_success"))
    starts = [r.started_at for r in running] + [_number(s.get("last_start")) or 0.0]
    last_start = max(starts) or None
    first_seen = _number(s.get("first_seen")) or min((r.started_at for r in running), default=now)
    problems: list[str] = []
    reasons: list[str] = []
    if s.get("failing"):
        problems.append("failing")
        reasons.append(f"the last {int(s.get('consecutive_failures') or 0)} run(s) failed")
    stuck = [r for r in running if max_runtime is not None and now - r.touched_at > max_runtime]
    if stuck:
        problems.append("stuck")
        reasons.append(f"run {stuck[0].run_id} has not finished nor renewed for {now - stuck[0].touched_at:.0f}s")
    if max_age is not None:
        since = last_success if last_success is not None else first_seen
        if now - since > max_age:
            problems.append("stale")
            what = "no success" if last_success is None else "last success"
            reasons.append(f"{what} {now - since:.0f}s ago, more than max_age={max_age:g}s")
    if s.get("last_outcome") == "degraded":
        problems.append("degraded")
        reasons.append("the last run failed its expect= check")
    failure = s.get("last_failure")
    return OperationHealth(
        name=name,
        state=problems[0] if problems else "ok",
        problems=tuple(problems),
        reason="; ".join(reasons) or "ok",
        checked_at=now,
        last_start=last_start,
        last_success=last_success,
        last_failure=Failure.from_dict(failure) if isinstance(failure, dict) else None,
        last_outcome=s.get("last_outcome"),
        last_duration=_number(s.get("last_duration")),
        consecutive_failures=int(s.get("consecutive_failures") or 0),
        max_age=max_age,
        max_runtime=max_runtime,
        running=running,
        open_alerts=tuple(s.get("open_alerts") or ()),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
