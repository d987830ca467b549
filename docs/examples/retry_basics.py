"""Retry a flaky call with reliable.retry, and watch the schedule on a fake clock.

Run: python docs/examples/retry_basics.py
"""

from __future__ import annotations

import reliable
from reliable.testing import FakeClock, installed

calls = 0


@reliable.retry(attempts=5, deadline="2m", wait_initial=1, wait_max=30, jitter="none")
def fetch_orders() -> list[str]:
    """Fails twice with a connection error, then works."""
    global calls
    calls += 1
    if calls < 3:
        raise ConnectionResetError("connection reset by peer")
    return ["order-1", "order-2"]


@reliable.retry(attempts=3)
def parse(text: str) -> int:
    """A ValueError is a bug, not a transient fault: it is raised at once, never retried."""
    return int(text)


def main() -> None:
    # The fake clock makes the backoff take no real time; in production the same code sleeps.
    clock = FakeClock()
    with installed(clock):
        print(fetch_orders(), "after", calls, "calls; slept", clock.sleeps)

        try:
            parse("forty-two")
        except ValueError as exc:
            print("not retried:", exc)

        # Giving up re-raises your own exception, with a note saying why.
        @reliable.retry(attempts=3, wait_initial=0.5)
        def always_down() -> None:
            raise TimeoutError("upstream timed out")

        try:
            always_down()
        except TimeoutError as exc:
            print("gave up:", exc, "|", getattr(exc, "__notes__", [""])[0])


if __name__ == "__main__":
    main()
