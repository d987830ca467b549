"""``reliable demo``: it runs end to end, shows every trait, leaves the user's state alone, and repeats itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes


def _demo(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELIABLE_", "OTEL_"))}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "user-state"),
        RELIABLE_STORE=f"sqlite:///{tmp_path / 'user-store.db'}",
        RELIABLE_LOCK_DIR=str(tmp_path / "user-locks"),
        RELIABLE_ALERT_WEBHOOK="http://127.0.0.1:9/never-called",
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "reliable", "demo"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], float, Path]:
    tmp_path = tmp_path_factory.mktemp("demo")
    done, took = _demo(tmp_path)
    return done, took, tmp_path


def test_demo_runs_in_well_under_a_minute(demo_run: tuple[subprocess.CompletedProcess[str], float, Path]) -> None:
    """The demo exits 0, writes nothing on stderr, and takes less than 30 s."""
    done, took, _ = demo_run

    assert (0, "") == (done.returncode, done.stderr)
    assert took < 30


def test_demo_leaves_the_users_state_alone(demo_run: tuple[subprocess.CompletedProcess[str], float, Path]) -> None:
    """The user's configured store, lock directory and state directory are never created or written."""
    _, _, tmp_path = demo_run

    assert [] == sorted(p.name for p in tmp_path.iterdir())


TRAITS = {
    "retry honours Retry-After": [
        "GET /orders?page=1 -> 429 Too Many Requests (Retry-After: 1)",
        "retry: attempt 1 failed (rate_limited), next attempt in 1.00s",
    ],
    "retry backs off on 503 and timeouts": [
        "GET /orders?page=1 -> 503 Service Unavailable",
        "retry: attempt 2 failed (transient), next attempt in",
        "GET /orders?page=1 -> no answer within 0.25s (timeout)",
        "retry: attempt 3 failed (transient), next attempt in",
        "GET /orders?page=1 -> 200 OK, 2 orders",
    ],
    "idempotent rerun writes nothing twice": [
        "idempotent: 0 orders written, 4 replayed from the store",
        "warehouse: 4 rows, 4 distinct orders",
        "(without @idempotent the table would now hold 8 rows)",
    ],
    "single_instance skips the overlap": [
        "single_instance: skipped, lock 'scraper' is held by run A",
        "observed: scraper skipped",
        "run B: scrape() returned reliable.SKIPPED",
    ],
    "observed expect= degrades and alerts, then recovers": [
        "observed: scraper degraded: expect= is false for the result 0",
        "ALERT warning degraded scraper:",
        "ALERT info recovered scraper: scraper is healthy again (recovered from: degraded)",
    ],
    "reliable run retries a command": [
        "$ reliable run --name nightly-backup --lock --retries 2",
        "backup: connection reset by peer",
        "reliable: warning: retrying 'nightly-backup' in",
        "backup: 42 tables dumped",
        "reliable: nightly-backup: exit code 0 (ok, 2 attempt(s)",
    ],
    "heartbeats turn stale and alert": [
        "health: nightly-backup is ok",
        "health: scraper is stale: last success",
        "ALERT error stale scraper: scraper is stale",
    ],
}


@pytest.mark.parametrize("trait", list(TRAITS))
def test_demo_shows_each_trait(demo_run: tuple[subprocess.CompletedProcess[str], float, Path], trait: str) -> None:
    """The output shows what each trait did, in order."""
    out = demo_run[0].stdout
    missing, at = [], 0
    for line in TRAITS[trait]:
        found = out.find(line, at)
        if found == -1:
            missing.append(line)
        else:
            at = found + len(line)

    assert [] == missing


def test_demo_ends_with_reliable_status(demo_run: tuple[subprocess.CompletedProcess[str], float, Path]) -> None:
    """The last chapter prints the `reliable status` table: the backup ok, the scraper stale."""
    rows = {
        line.split()[0]: line.split()[1] for line in demo_run[0].stdout.splitlines() if re.match(r"^\S+\s+\S", line)
    }

    assert ("STATE", "ok", "stale") == (rows.get("OPERATION"), rows.get("nightly-backup"), rows.get("scraper"))


def _masked(text: str) -> str:
    """The output without durations (the only thing allowed to differ between runs)."""
    text = re.sub(r"\d+(\.\d+)?(e-?\d+)?s\b", "<t>s", text)
    return re.sub(r"\d+[smhd] ago", "<t> ago", text)


def test_demo_output_is_deterministic_apart_from_timings(
    demo_run: tuple[subprocess.CompletedProcess[str], float, Path], tmp_path: Path
) -> None:
    """Two runs print the same lines once durations are masked (the jitter is seeded)."""
    again, _ = _demo(tmp_path)

    assert _masked(demo_run[0].stdout) == _masked(again.stdout)
