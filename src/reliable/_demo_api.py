"""The local services of ``reliable demo``: a flaky orders API on 127.0.0.1 and a SQLite "warehouse".

`FlakyAPI` serves ``GET /orders?page=N`` as JSON from a thread. Before answering normally
it plays the faults queued with `FlakyAPI.fail`, one per request: a 429 with
``Retry-After``, a 503, or a response slower than the client's timeout. With
`FlakyAPI.empty` set it answers 200 with no orders, the silent-degradation case.

`Warehouse` is a SQLite table without a unique key, like many real reporting tables:
writing an order twice really does make two rows.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FlakyAPI", "Warehouse", "get_json"]

Order = dict[str, Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FlakyAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a slow answer closes its socket: not worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: the demo prints what the client saw."""

    def do_GET(self) -> None:
        api = self.server.api
        parts = urlsplit(self.path)
        if parts.path != "/orders":
            self._send(404, {"error": "not found"})
            return
        page = int(parse_qs(parts.query).get("page", ["1"])[0])
        fault = api.next_fault()
        if fault is not None:
            kind, value = fault
            if kind == "429":
                self._send(429, {"error": "rate limited"}, {"Retry-After": f"{value:g}"})
                return
            if kind == "503":
                self._send(503, {"error": "upstream unavailable"})
                return
            time.sleep(value)  # "slow": answer after the client stopped waiting
        self._send(200, [] if api.empty else api.pages.get(page, []))

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class FlakyAPI:
    """A local orders API with scripted faults; a context manager that starts and stops the server."""

    def __init__(self, pages: dict[int, list[Order]]) -> None:
        self.pages = pages
        self.empty = False
        self._faults: deque[tuple[str, float]] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, kind: str, value: float = 0.0) -> None:
        """Queue a fault for the next request: ``"429"`` (Retry-After *value*), ``"503"``, ``"slow"`` (*value* s)."""
        with self._lock:
            self._faults.append((kind, value))

    def next_fault(self) -> tuple[str, float] | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def __enter__(self) -> FlakyAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def get_json(url: str, *, timeout: float) -> Any:
    """GET *url* and decode its JSON body; HTTP errors raise `urllib.error.HTTPError` (status and headers on it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


class Warehouse:
    """A SQLite table of orders with no unique key: a second insert of an order is a duplicate row."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER, customer TEXT, total REAL)")

    def insert(self, order: Order) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO orders (id, customer, total) VALUES (?, ?, ?)",
                (order["id"], order["customer"], order["total"]),
            )

    def rows(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM orders").fetchone()
        return int(count)

    def distinct(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(DISTINCT id) FROM orders").fetchone()
        return int(count)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def describe_http_error(exc: urllib.error.HTTPError) -> str:
    """``"429 Too Many Requests (Retry-After: 1)"``."""
    after = exc.headers.get("Retry-After") if exc.headers is not None else None
    return f"{exc.code} {exc.reason}" + (f" (Retry-After: {after})" if after else "")
