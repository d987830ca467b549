"""How reliable.retry treats openai- and anthropic-shaped errors (built locally: no SDK, no network).

The real SDKs raise ``APIStatusError`` subclasses with ``.status_code``, ``.response``
(an httpx response with headers) and ``.body``; reliable reads those attributes without
importing the SDKs. Create real clients with ``max_retries=0`` so only reliable retries:

    client = openai.OpenAI(max_retries=0)
    client = anthropic.Anthropic(max_retries=0)

Run: python docs/examples/retry_llm_errors.py
"""

from __future__ import annotations

from typing import Any

import reliable
from reliable.testing import FakeClock, installed


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.headers = headers


class RateLimitError(Exception):
    """Shaped like openai.RateLimitError / anthropic.RateLimitError (an APIStatusError)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"Error code: {status}")
        self.response = FakeResponse(status, headers or {})
        self.status_code = status
        self.body = body


def show(exc: Exception) -> None:
    c = reliable.classify(exc)
    print(f"  {c.kind:16} retry={c.retry!s:5} wait={c.wait} ({c.reason})")


def main() -> None:
    print("openai 429 rate limit with retry-after-ms:")
    show(RateLimitError(429, {"code": "rate_limit_exceeded"}, {"retry-after-ms": "1500", "retry-after": "2"}))
    print("openai 429 insufficient_quota (needs a human):")
    show(RateLimitError(429, {"code": "insufficient_quota", "type": "insufficient_quota"}))
    print("anthropic 529 overloaded:")
    show(RateLimitError(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))

    replies: list[Exception | str] = [
        RateLimitError(429, {"code": "rate_limit_exceeded"}, {"retry-after": "20"}),
        RateLimitError(529, {"type": "error", "error": {"type": "overloaded_error"}}),
        "Hello!",
    ]

    @reliable.retry(attempts=5, deadline="2m", wait_max=10)
    def complete(prompt: str) -> str:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    clock = FakeClock()
    with installed(clock):
        print("completion:", complete("hi"), "| waits:", [round(s, 2) for s in clock.sleeps])
        # the first wait is the server's 20 s although wait_max=10: wait_max caps only the computed backoff

    @reliable.retry(deadline=60)
    def slow_down() -> str:
        raise RateLimitError(429, {"code": "rate_limit_exceeded"}, {"retry-after": "300"})

    clock = FakeClock()
    with installed(clock):
        try:
            slow_down()
        except RateLimitError as exc:
            print("gave up at once, slept", clock.sleeps, "|", getattr(exc, "__notes__", [""])[0])


if __name__ == "__main__":
    main()
