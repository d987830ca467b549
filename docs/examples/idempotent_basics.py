"""Charge an order once, however often the handler is called: replays, typed results, conflicts.

A payment webhook is delivered twice (providers retry on timeouts). The handler is made
idempotent on the order id: the second delivery gets the stored receipt back, as the same
dataclass, without charging again. A delivery that reuses the id with another amount is refused.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import reliable
from reliable.stores.memory import MemoryStore

store = MemoryStore()  # in a real job: reliable.configure(store="sqlite:////var/lib/myjob/state.db")
charges: list[str] = []


@dataclasses.dataclass(frozen=True)
class Receipt:
    order_id: str
    amount: Decimal
    charge_id: str


@reliable.idempotent(key=lambda order_id, amount: f"order:{order_id}", ttl="7d", store=store)
def charge(order_id: str, amount: Decimal) -> Receipt:
    """Charge the card (here: append to a list) and return the receipt."""
    charges.append(order_id)
    return Receipt(order_id, amount, charge_id=f"ch_{len(charges)}")


def main() -> None:
    first = charge("A-17", Decimal("19.99"))
    again = charge("A-17", Decimal("19.99"))  # the provider retried the webhook
    print("first:", first)
    print("again:", again, "(same receipt, same type:", type(again).__name__ + ")")
    print("charged", len(charges), "time(s)")
    assert first == again
    assert charges == ["A-17"]

    try:
        charge("A-17", Decimal("5.00"))  # same key, different amount: a bug upstream
    except reliable.IdempotencyConflictError as exc:
        print("refused:", exc.message.split(";")[0])


if __name__ == "__main__":
    main()
