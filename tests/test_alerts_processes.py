"""Alert throttling across real processes sharing one store: several processes failing at once send one alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from backends import Backend

CHILD = """
import json, os, sys, time
import reliable
from reliable import alerts
from reliable._internal import _telemetry

store_url, hook_url, name, go = sys.argv[1:5]

@reliable.observed(name, store=store_url, alert=[alerts.Webhook(hook_url, retries=0)])
def job():
    raise ValueError("boom")

deadline = time.monotonic() + 20
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.005)
try:
    job()
except ValueError:
    pass
alerts.flush(10)
counts = _telemetry.event_counts()
print(json.dumps({e: counts.get(("reliable.alerts." + e, name), 0) for e in ("sent", "throttled", "sink_failed")}))
"""


class Receiver:
    """Counts the POSTs of the children's webhook sinks."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()


@pytest.mark.processes
def test_processes_failing_together_send_one_alert(shared_backend: Backend, tmp_path: Path) -> None:
    """N processes on one store fail the same operation at the same moment: exactly one alert is delivered,
    the others are throttled through the store (put_if_absent on the alert's key)."""
    processes = 3
    assert shared_backend.url is not None
    store_url = shared_backend.url(tmp_path)
    receiver = Receiver()
    go = tmp_path / "go"
    name = f"shared-{os.getpid()}-{shared_backend.name}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, store_url, receiver.url, name, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    try:
        go.touch()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            child.kill()
        receiver.server.shutdown()
        receiver.server.server_close()

    assert [0] * processes == [c.returncode for c in children], [err for _, err in outputs]
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert {"sent": 1, "throttled": processes - 1, "sink_failed": 0} == {
        key: sum(c[key] for c in counts) for key in ("sent", "throttled", "sink_failed")
    }
    assert [("failure", name)] == [(b["kind"], b["operation"]) for b in receiver.bodies]
