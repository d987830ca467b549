"""A retry budget shared through the store: an outage costs a few retries, not a retry storm.

Run: python docs/examples/retry_budget.py
"""

from __future__ import annotations

import reliable
from reliable.stores.memory import MemoryStore
from reliable.testing import FakeClock, installed

# Every process that uses a budget named "payments-api" on the same store shares it.
# Retries are capped at 20% of calls, plus 0.2 retries per second (2 per 10 s window).
budget = reliable.RetryBudget("payments-api", ratio=0.2, min_per_second=0.2, window="10s", store=MemoryStore())
calls = 0


@reliable.retry(attempts=5, budget=budget, wait_initial=0.1)
def charge() -> None:
    global calls
    calls += 1
    raise ConnectionRefusedError("payments API is down")


def main() -> None:
    with installed(FakeClock()):
        for number in range(1, 6):
            before = calls
            try:
                charge()
            except ConnectionRefusedError as exc:
                why = getattr(exc, "__notes__", [""])[-1].split(": ", 1)[-1]
                print(f"call {number}: {calls - before} request(s), then {why}")
    print(f"{calls} requests for 5 calls (without the budget: 25)")


if __name__ == "__main__":
    main()
