"""The block form: make a step of a script safe to run twice when it is not a function of its own."""

from __future__ import annotations

import asyncio

import reliable
from reliable.stores.memory import MemoryStore

store = MemoryStore()
sent: list[str] = []


def send_invoice(invoice_id: str) -> str:
    with reliable.idempotency(f"invoice:{invoice_id}", name="send-invoice", store=store) as step:
        if step.needed:  # this caller holds the key: do the work and store its result
            sent.append(invoice_id)
            step.result = f"message-{len(sent)}"
    return str(step.result)  # on a replay: the stored result


async def send_invoice_async(invoice_id: str) -> str:
    async with reliable.idempotency(f"invoice:{invoice_id}", name="send-invoice", store=store) as step:
        if step.needed:
            await asyncio.sleep(0)
            sent.append(invoice_id)
            step.result = f"message-{len(sent)}"
    return str(step.result)


def main() -> None:
    print(send_invoice("2024-001"), send_invoice("2024-001"))
    print(asyncio.run(send_invoice_async("2024-001")), asyncio.run(send_invoice_async("2024-002")))
    print("sent:", sent)
    assert sent == ["2024-001", "2024-002"]


if __name__ == "__main__":
    main()
