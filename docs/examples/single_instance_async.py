"""Async jobs: at most two exports at once (limit=2), the others wait their turn."""

from __future__ import annotations

import asyncio

import reliable

exports = reliable.single_instance("export", limit=2, on_conflict="wait", timeout="1m")


@exports
async def export(customer: str) -> str:
    lease = exports.lease
    assert lease is not None
    await asyncio.sleep(0.01)  # the real export
    return f"{customer} exported in slot {lease.slot} (token {lease.token})"


async def main() -> None:
    for line in await asyncio.gather(*(export(c) for c in ("acme", "globex", "initech", "umbrella"))):
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
