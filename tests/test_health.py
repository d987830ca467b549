"""The pure heartbeat decisions (`apply_finish`, `judge`) and `reliable.health(alert=True)` over every store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import reliable
from reliable._config import configured
from reliable._heartbeat import Finish, Spec, Transition, apply_finish, judge

if TYPE_CHECKING:
    from reliable.alerts import Alert
    from reliable.stores import Store
    from reliable.testing import FakeClock

pytest_plugins = ["observed_support"]
"""Fixtures: name, clock."""

SPEC = Spec("job", max_age=600.0, max_runtime=60.0, failing_after=2, recover_after=2)


def fin(outcome: str, at: float = 1000.0, **fields: Any) -> Finish:
    return Finish(run_id="r1", started_at=at, duration=2.0, outcome=outcome, **fields)


def run(outcomes: list[str], spec: Spec = SPEC) -> tuple[dict[str, Any], list[Transition]]:
    summary: dict[str, Any] | None = None
    transitions = []
    for i, outcome in enumerate(outcomes):
        summary, transition = apply_finish(summary, fin(outcome, at=1000.0 + i * 10), spec)
        transitions.append(transition)
    assert summary is not None
    return summary, transitions


# -- apply_finish -------------------------------------------------------------------------------------


def test_first_success_records_times_and_spec() -> None:
    """The first ok run creates the summary: first seen, last start, last success (start + duration), spec."""
    summary, (transition,) = run(["ok"])

    assert (1000.0, 1000.0, 1002.0, "ok", 600.0, 1) == (
        summary["first_seen"],
        summary["last_start"],
        summary["last_success"],
        summary["last_outcome"],
        summary["max_age"],
        summary["consecutive_successes"],
    )
    assert Transition() == transition


def test_failure_alerts_only_once_failing() -> None:
    """With failing_after=2, the first failure fires nothing, the second fires 'failure' and opens it."""
    summary, transitions = run(["error", "error"])

    assert [(), ("failure",)] == [t.fire for t in transitions]
    assert (True, ["failure"], 2) == (summary["failing"], summary["open_alerts"], summary["consecutive_failures"])


def test_quota_exhaustion_alerts_at_once() -> None:
    """A failure classified quota_exhausted fires at once, whatever failing_after says."""
    _, transition = apply_finish(None, fin("error", kind="quota_exhausted", error="429 insufficient_quota"), SPEC)

    assert ("quota_exhausted",) == transition.fire


def test_recovery_needs_recover_after_successes() -> None:
    """Once failing, one success recovers nothing; the second sends the recovery of every open kind."""
    summary, transitions = run(["error", "error", "ok", "ok"])

    assert [(), (), (), ("failure",)] == [t.recovered for t in transitions]
    assert (False, []) == (summary["failing"], summary["open_alerts"])


def test_degraded_fires_and_recovers_on_next_ok() -> None:
    """A degraded run fires 'degraded'; the next ok run (not failing) recovers it."""
    _, transitions = run(["degraded", "ok"])

    assert [("degraded",), ()] == [t.fire for t in transitions]
    assert ("degraded",) == transitions[1].recovered


def test_skip_only_updates_last_skip() -> None:
    """A skipped run changes nothing but last_skip."""
    before, _ = run(["ok"])
    after, transition = apply_finish(before, fin("skipped", at=2000.0), SPEC)

    assert {**before, "last_skip": 2002.0} == after
    assert Transition() == transition


@given(
    outcomes=st.lists(st.sampled_from(["ok", "error"]), max_size=30),
    failing_after=st.integers(1, 4),
    recover_after=st.integers(1, 4),
)
def test_failing_follows_the_hysteresis_model(outcomes: list[str], failing_after: int, recover_after: int) -> None:
    """For any run sequence, 'failing' is set after failing_after failures in a row and cleared only after
    recover_after successes in a row (a model of the rule, checked step by step)."""
    spec = Spec("job", failing_after=failing_after, recover_after=recover_after)
    summary: dict[str, Any] | None = None
    failing, failures, successes = False, 0, 0
    for i, outcome in enumerate(outcomes):
        summary, _ = apply_finish(summary, fin(outcome, at=float(i)), spec)
        if outcome == "ok":
            failures, successes = 0, successes + 1
            failing = failing and successes < recover_after
        else:
            failures, successes = failures + 1, 0
            failing = failing or failures >= failing_after

        assert failing == summary["failing"]


# -- judge --------------------------------------------------------------------------------------------


def test_judge_stale_after_max_age_since_last_success() -> None:
    """ok within max_age of the last success, stale after it."""
    summary, _ = run(["ok"])

    assert "ok" == judge("job", summary, [], 1002.0 + 600).state
    assert "stale" == judge("job", summary, [], 1002.0 + 601).state


def test_judge_stuck_by_last_touch() -> None:
    """A run in progress is stuck when its last start or renewal is older than max_runtime."""
    summary, _ = run(["ok"])
    running = {"run_id": "r2", "started_at": 1100.0, "touched_at": 1150.0, "host": "h", "pid": 7}

    assert "ok" == judge("job", summary, [running], 1210.0).state
    stuck = judge("job", summary, [running], 1211.0)
    assert ("stuck", "r2", "h", 7) == (
        stuck.state,
        stuck.running[0].run_id,
        stuck.running[0].host,
        stuck.running[0].pid,
    )


def test_judge_lists_every_problem_worst_first() -> None:
    """problems are ordered failing, stuck, stale, degraded; state is the first."""
    summary, _ = run(["ok", "error", "error", "degraded"])
    running = {"run_id": "r9", "started_at": 1040.0, "name": "job"}
    found = judge("job", summary, [running], 5000.0)

    assert (("failing", "stuck", "stale", "degraded"), "failing") == (found.problems, found.state)
    assert found.reason.startswith("the last 2 run(s) failed; run r9 has not finished")


def test_judge_run_without_summary_uses_the_run_spec() -> None:
    """The first run of an operation, still in progress, is judged with the max_runtime its run record carries."""
    running = {"run_id": "r1", "started_at": 0.0, "max_runtime": 10.0, "max_age": None}

    found = judge("new", None, [running], 11.0)

    assert ("stuck", None, 10.0) == (found.state, found.last_success, found.max_runtime)


# -- health(alert=True) -------------------------------------------------------------------------------


def test_health_alerts_staleness_and_success_recovers_it(store: Store, clock: FakeClock, name: str) -> None:
    """health(alert=True) sends a stale alert through the configured sinks and marks it open; the next
    success sends a recovery notice; a second check inside the throttle window sends nothing new."""
    seen: list[Alert] = []
    job = reliable.observed(name, max_age="1h", store=store)(lambda: 1)
    with configured(alerts=[seen.append]):
        job()
        clock.advance("2h")
        reliable.health(store=store, alert=True)
        reliable.health(store=store, alert=True)
        reliable.alerts.flush()
        stale = [a.kind for a in seen]
        job()
        reliable.alerts.flush()

    assert ["stale"] == stale
    assert ["stale", "recovered"] == [a.kind for a in seen]
    assert ["stale"] == seen[1].details["recovered"]
    assert seen[0].message.startswith(f"{name} is stale: last success 7200s ago")


def test_health_without_alert_sends_nothing(store: Store, clock: FakeClock, name: str) -> None:
    """health() alone only reads: no alert, even for a stale operation."""
    seen: list[Alert] = []
    with configured(alerts=[seen.append]):
        reliable.observed(name, max_age=1, store=store)(lambda: 1)()
        clock.advance(5)
        state = reliable.health(store=store)[name].state
        reliable.alerts.flush()

    assert ("stale", []) == (state, seen)


def test_unknown_store_url_raises_config_error() -> None:
    """health() with a URL of an unknown scheme raises ConfigError naming the URL."""
    with pytest.raises(reliable.ConfigError, match="ftp://x"):
        reliable.health(store="ftp://x")
