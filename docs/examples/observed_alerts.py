"""Alerts that reach someone: a webhook sink (here a local receiver), a test alert, a failure and its recovery.

Replace the local receiver's URL with your Slack (``slack=True``) or incident tool's
incoming webhook. The failure alert and the recovery notice are delivered by a
background thread; ``alerts.flush()`` waits for them (interpreter exit does too).
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import reliable
from reliable import alerts

received: list[str] = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX"

    reliable.configure(alerts=[alerts.Log(), alerts.Webhook(url, slack=True, timeout=2)])
    print("test alert delivered:", [d.ok for d in alerts.test()])

    @reliable.observed("charge-cards", recover_after=1)
    def charge_cards(fail: bool) -> int:
        if fail:
            raise TimeoutError("payment API timed out")
        return 3

    with contextlib.suppress(TimeoutError):
        charge_cards(True)  # failure alert
    charge_cards(False)  # recovery notice
    alerts.flush()
    server.shutdown()
    for text in received:
        print("webhook got:", text)


if __name__ == "__main__":
    main()
