"""Observe a job: every call leaves an outcome, a duration and a log record; zero rows is "degraded".

``expect=`` catches the run that "worked" but produced nothing. Run it: the first call is
ok, the second raises (error), the third returns 0 rows (degraded), and the context-manager
and async forms report the same way. Log lines go to stderr as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import reliable
import reliable.logging

reliable.logging.setup(stream=sys.stdout)  # JSON lines; skip this if your program configures logging


@reliable.observed("sync-orders", expect=lambda rows: rows > 0, alert=False)
def sync_orders(rows_upstream: int) -> int:
    """Pretend to copy orders; return how many rows were written."""
    if rows_upstream < 0:
        raise ConnectionError("upstream closed the connection")
    return rows_upstream


@reliable.observed("embed-batch", alert=False)
async def embed_batch(texts: list[str]) -> int:
    await asyncio.sleep(0)
    return len(texts)


def main() -> None:
    sync_orders(120)  # ok
    with contextlib.suppress(ConnectionError):
        sync_orders(-1)  # error: logged at ERROR with the exception, then raised to you
    sync_orders(0)  # degraded: returned, but logged at WARNING and counted as degraded

    with reliable.observed("load-warehouse", expect=bool, alert=False) as run:
        run.set_result(["row"])  # checked against expect= when the block ends
    print("context manager outcome:", run.outcome)

    asyncio.run(embed_batch(["a", "b"]))


if __name__ == "__main__":
    main()
