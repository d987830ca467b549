"""Staleness: a job that stops succeeding is noticed by whoever reads the store, not by the job itself.

The job promises a success every 30 minutes (``max_age="30m"``). A `FakeClock` plays the
time forward: after one success the operation is ok; 2 hours later, with no new success,
it is stale, and ``reliable check`` (what cron or Nagios runs) exits 1; the next success
makes it ok again. A real deployment runs ``reliable check --store URL`` from cron instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import reliable
from reliable._cli import main as reliable_command
from reliable.testing import FakeClock, installed


def run(store: str) -> None:
    @reliable.observed("nightly-export", max_age="30m", store=store, alert=False)
    def export() -> int:
        return 12

    clock = FakeClock()
    with installed(clock):
        export()
        print("after a success:", reliable.health(store=store)["nightly-export"].state)

        clock.advance("2h")
        health = reliable.health(store=store)["nightly-export"]
        print("two hours later:", health.state, "-", health.reason)
        print("reliable check exit code:", reliable_command(["check", "--store", store, "--no-alert"]))

        export()
        print("after the next success:", reliable.health(store=store)["nightly-export"].state)
        reliable_command(["status", "--store", store])


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        run(f"sqlite:///{Path(directory) / 'state.db'}")
