"""Retrying a streaming LLM response: only until the first chunk reaches you.

Run: python docs/examples/retry_streaming.py
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import reliable
from reliable.testing import FakeClock, installed


class OverloadedError(Exception):
    """Anthropic sends overload as an SSE error event inside an HTTP 200 stream."""

    def __init__(self) -> None:
        super().__init__("Overloaded")
        self.status_code = 200
        self.body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


openings = 0


@reliable.retry(attempts=4)
async def stream_reply(prompt: str, *, fail_mid_stream: bool = False) -> AsyncIterator[str]:
    """Overloaded on the first opening; the second opening streams (and may fail half-way)."""
    global openings
    openings += 1
    if openings == 1:
        raise OverloadedError()
    for index, chunk in enumerate(["Hel", "lo", "!"]):
        await asyncio.sleep(0)
        if fail_mid_stream and index == 1:
            raise OverloadedError()
        yield chunk


async def main() -> None:
    global openings
    with installed(FakeClock()):
        chunks = [chunk async for chunk in stream_reply("hi")]
        print("retried before the first chunk:", "".join(chunks), f"({openings} openings)")

        openings = 0
        received: list[str] = []
        try:
            async for chunk in stream_reply("hi", fail_mid_stream=True):
                received.append(chunk)
        except OverloadedError:
            print("failed after", received, "-> not retried, so no chunk is ever delivered twice")


if __name__ == "__main__":
    asyncio.run(main())
