"""The block form, reliable.attempts, for code that is not a function of its own (sync and async).

Run: python docs/examples/retry_block.py
"""

from __future__ import annotations

import asyncio

import reliable
from reliable.testing import FakeClock, installed

flaky: list[Exception | None] = [TimeoutError("read timed out"), None]


def download() -> str:
    outcome = flaky.pop(0) if flaky else None
    if outcome is not None:
        raise outcome
    return "report.csv"


async def main() -> None:
    with installed(FakeClock()):
        for attempt in reliable.attempts(attempts=3, deadline="30s"):
            with attempt:
                print("attempt", attempt.number)
                name = download()
        print("downloaded", name)

        flaky.extend([ConnectionResetError("reset"), None])
        async for attempt in reliable.attempts(attempts=3):
            with attempt:
                print("async attempt", attempt.number)
                await asyncio.sleep(0)
                name = download()
        print("downloaded", name)


if __name__ == "__main__":
    asyncio.run(main())
