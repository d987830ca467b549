"""Four processes, one SQLite file, the same 50 orders: every order is exported exactly once.

Each process calls the idempotent export for every order, in its own order. When two reach the
same order at once, the second waits for the first one's result instead of exporting again.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
import tempfile
from pathlib import Path

import reliable

ORDERS = 50


def worker(url: str, exported: str, seed: int) -> None:
    store = reliable.stores.open(url)

    @reliable.idempotent(key=lambda order: f"order:{order}", name="export-order", store=store)
    def export(order: int) -> str:
        with open(exported, "a") as out:  # the side effect: one line per export
            out.write(f"{order} by {os.getpid()}\n")
        return f"exported {order}"

    orders = list(range(ORDERS))
    random.Random(seed).shuffle(orders)
    for order in orders:
        export(order)
    store.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/state.db"
        exported = str(Path(tmp) / "exported.txt")
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=worker, args=(url, exported, seed)) for seed in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        lines = Path(exported).read_text().splitlines()
    orders = sorted(int(line.split()[0]) for line in lines)
    print(f"{len(procs)} processes, {ORDERS} orders, {len(lines)} exports")
    return 0 if orders == list(range(ORDERS)) else 1


if __name__ == "__main__":
    sys.exit(main())
