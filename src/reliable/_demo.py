"""``reliable demo``: a scraper becomes a system, one trait at a time, in a few seconds, all on this machine.

It starts a flaky orders API on 127.0.0.1 and a SQLite "warehouse", points `reliable` at
an embedded store in a temporary directory (never the user's own state), runs the story
chapter by chapter and prints what each primitive did, ending with ``reliable status``.
The output is the same on every run apart from durations (the backoff jitter is seeded).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._demo_api import FlakyAPI, Warehouse, describe_http_error, get_json

__all__ = ["DEMO_HELP", "add_demo_arguments", "demo"]

DEMO_HELP = "watch a flaky scraper become a system: retries, idempotency, locks, alerts, staleness (local, seconds)"
PAGES = {
    1: [{"id": 1, "customer": "ada", "total": 12.5}, {"id": 2, "customer": "bob", "total": 8.0}],
    2: [{"id": 3, "customer": "cy", "total": 99.9}, {"id": 4, "customer": "di", "total": 4.2}],
}
ORDERS = sum(len(orders) for orders in PAGES.values())
CLIENT_TIMEOUT = 0.25
INTRO = """\
reliable demo: a scraper becomes a system, one trait at a time.
Everything runs on this machine: an orders API on 127.0.0.1, a SQLite warehouse, and
reliable's state store in a temporary directory that is removed at the end.

    @reliable.observed("scraper", expect=lambda n: n > 0, max_age="1h")
    @reliable.single_instance("scraper")
    def scrape() -> int: ...          # fetch pages 1 and 2, save every order, return how many

    @reliable.retry(attempts=6, wait_initial=0.05, wait_max=0.4)
    def fetch_orders(page): ...       # GET /orders?page=N with a 0.25 s timeout

    @reliable.idempotent(key=lambda order: f"order:{order['id']}")
    def save_order(order): ...        # INSERT INTO orders: the table has no unique key
"""
BACKUP = """\
import pathlib, sys
tries = pathlib.Path(__file__).with_suffix(".tries")
n = int(tries.read_text()) if tries.exists() else 0
tries.write_text(str(n + 1))
if n == 0:
    print("backup: connection reset by peer", file=sys.stderr)
    sys.exit(1)
print("backup: 42 tables dumped")
"""


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="seed of the backoff jitter (default 7)")


def say(text: str = "") -> None:
    print(text, flush=True)


class Story:
    """The scraper, its services, and what the primitives reported."""

    def __init__(self, tmp: Path) -> None:
        import reliable

        self.tmp = tmp
        self.warehouse = Warehouse(str(tmp / "warehouse.db"))
        self.api = FlakyAPI(PAGES)
        self.alerts: list[Any] = []
        self.replays = 0
        self.written = 0

        @reliable.retry(attempts=6, deadline=20, wait_initial=0.05, wait_max=0.4, name="fetch_orders")
        def fetch_orders(page: int) -> list[dict[str, Any]]:
            request = f"   GET /orders?page={page} ->"
            try:
                orders: list[dict[str, Any]] = get_json(f"{self.api.url}/orders?page={page}", timeout=CLIENT_TIMEOUT)
            except urllib.error.HTTPError as exc:
                say(f"{request} {describe_http_error(exc)}")
                raise
            except TimeoutError:
                say(f"{request} no answer within {CLIENT_TIMEOUT}s (timeout)")
                raise
            say(f"{request} 200 OK, {len(orders)} orders")
            return orders

        @reliable.idempotent(key=lambda order: f"order:{order['id']}", name="save_order", ttl="7d")
        def save_order(order: dict[str, Any]) -> None:
            self.warehouse.insert(order)
            self.written += 1

        @reliable.observed("scraper", expect=lambda n: n > 0, max_age="1h")
        @reliable.single_instance("scraper")
        def scrape(on_start: Callable[[], None] | None = None) -> int:
            if on_start is not None:
                on_start()
            count = 0
            for page in PAGES:
                for order in fetch_orders(page):
                    save_order(order)
                    count += 1
            return count

        self.scrape = scrape

    # -- what the primitives say --------------------------------------------------------------

    def listen(self, event: Any) -> None:
        a = event.attributes
        if event.name == "reliable.retry.attempt":
            say(
                f"     retry: attempt {a['reliable.attempt']} failed ({a['reliable.classification']}), "
                f"next attempt in {a['reliable.retry.wait']:.2f}s"
            )
        elif event.name == "reliable.retry.give_up":
            say(f"     retry: gave up: {a.get('reliable.retry.reason')}")
        elif event.name == "reliable.idempotent.replay":
            self.replays += 1
        elif event.name == "reliable.single_instance.skipped":
            say(f"     single_instance: skipped, lock {a['reliable.operation']!r} is held by run A")
        elif event.name == "reliable.observed.finished":
            outcome = a["reliable.outcome"]
            why = f": {a['reliable.reason']}" if outcome == "degraded" else ""
            say(f"     observed: {a['reliable.operation']} {outcome}{why} ({a['reliable.duration']:.2f}s)")

    def show_alerts(self) -> None:
        from . import alerts

        alerts.flush()
        for alert in self.alerts:
            say(f"     ALERT {alert.severity} {alert.kind} {alert.operation}: {alert.message}")
        self.alerts.clear()

    def show_warehouse(self) -> None:
        say(f"   warehouse: {self.warehouse.rows()} rows, {self.warehouse.distinct()} distinct orders")

    # -- the chapters ---------------------------------------------------------------------------

    def retries(self) -> None:
        say("\n1. The API is flaky: reliable.retry waits and tries again")
        self.api.fail("429", 1)
        self.api.fail("503")
        self.api.fail("slow", CLIENT_TIMEOUT + 0.35)
        self.scrape()
        self.show_warehouse()

    def rerun(self) -> None:
        say("\n2. Cron runs the job again: reliable.idempotent writes nothing twice")
        self.replays = self.written = 0
        self.scrape()
        say(f"   idempotent: {self.written} orders written, {self.replays} replayed from the store")
        self.show_warehouse()
        say(f"   (without @idempotent the table would now hold {2 * ORDERS} rows)")

    def overlap(self) -> None:
        say("\n3. Two runs overlap: reliable.single_instance lets one of them run")
        started, release = threading.Event(), threading.Event()

        def hold() -> None:
            say("   run A: holds the lock 'scraper', still working")
            started.set()
            release.wait(10)

        first = threading.Thread(target=lambda: self.scrape(on_start=hold))
        first.start()
        started.wait(10)
        say("   run B: starts while run A works")
        result = self.scrape()
        say(f"   run B: scrape() returned {result!r}")
        release.set()
        first.join(10)
        self.show_warehouse()

    def degraded(self) -> None:
        say("\n4. The API answers 200 with nothing: observed(expect=...) calls it degraded")
        self.api.empty = True
        self.scrape()
        self.show_alerts()
        say("   the API is fixed; the next run is ok again, and a recovery notice follows")
        self.api.empty = False
        self.scrape()
        self.show_alerts()

    def any_command(self) -> None:
        say("\n5. Not Python? `reliable run` gives any command the same traits")
        script = self.tmp / "backup.py"
        script.write_text(f"#!{sys.executable}\n{BACKUP}")
        script.chmod(0o755)
        command = (
            [str(script)] if " " not in sys.executable and len(sys.executable) < 120 else [sys.executable, str(script)]
        )
        options = ["--name", "nightly-backup", "--lock", "--retries", "2", "--wait-initial", "0.05", "--max-age", "1d"]
        say(f"   $ reliable run {' '.join(options)} -- ./backup.py")
        done = subprocess.run(
            [sys.executable, "-m", "reliable", "run", *options, "--", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.tmp,
            timeout=60,
            check=False,
        )
        for line in done.stdout.splitlines():
            say(f"     {line}")
        say(f"   exit code {done.returncode}")

    def stale(self) -> None:
        import reliable
        from reliable.testing import FakeClock

        say("\n6. Then cron stops running it: heartbeats, max_age and reliable.health()")
        say("   two hours pass (the demo moves reliable's clock instead of waiting)")
        with reliable.testing.installed(FakeClock(start=time.time() + 2 * 3600)):
            for name, item in reliable.health(alert=True).items():
                say(f"   health: {name} is {item.state}" + ("" if item.healthy else f": {item.reason}"))
            self.show_alerts()
            say("\n7. What `reliable status` shows (and `reliable check` exits 1 on):\n")
            from ._cli import main

            main(["status"])

    def tell(self) -> int:
        from ._internal import _telemetry

        say(INTRO)
        _telemetry.add_listener(self.listen)
        try:
            with self.api:
                self.retries()
                self.rerun()
                self.overlap()
                self.degraded()
            self.any_command()
            self.stale()
        finally:
            _telemetry.remove_listener(self.listen)
            self.warehouse.close()
        say("\nEach trait is one decorator; see README.md and docs/ for how to use them in your own jobs.")
        return 0


@contextlib.contextmanager
def _isolated(tmp: Path, alerts: list[Any]) -> Iterator[None]:
    """Point every store, lock and alert of this process and its children at *tmp*; restore afterwards."""
    from ._config import configured

    env = {
        "XDG_STATE_HOME": str(tmp / "state"),
        "RELIABLE_STORE": f"sqlite:///{tmp / 'state' / 'reliable' / 'state.db'}",
        "RELIABLE_LOCK_DIR": str(tmp / "locks"),
    }
    saved = {key: os.environ.get(key) for key in (*env, "RELIABLE_CONFIG", "RELIABLE_ALERT_WEBHOOK")}
    quiet = logging.NullHandler()
    logging.getLogger("reliable").addHandler(quiet)
    os.environ.update(env)
    for key in ("RELIABLE_CONFIG", "RELIABLE_ALERT_WEBHOOK"):
        os.environ.pop(key, None)
    try:
        with configured(store=env["RELIABLE_STORE"], lock_dir=env["RELIABLE_LOCK_DIR"], alerts=[alerts.append]):
            yield
    finally:
        logging.getLogger("reliable").removeHandler(quiet)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def demo(args: argparse.Namespace) -> int:
    """``reliable demo``: tell the story; exit code 0."""
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="reliable-demo-") as name:
        tmp = Path(name)
        story = Story(tmp)
        with _isolated(tmp, story.alerts):
            return story.tell()
