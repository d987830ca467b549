"""Check your own store against the store contract with reliable.testing.check_store.

Run: python docs/examples/stores_check_store.py

check_store runs every check of the protocol (versions, TTLs driven by a fake clock,
counters, scans, values, bad arguments, closing, thread and task races) against fresh
stores from your factory, and raises AssertionError naming the first check that fails.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from reliable.stores.memory import MemoryStore
from reliable.stores.sqlite import SQLiteStore
from reliable.testing import check_store


class ForgetfulStore(MemoryStore):
    """A broken store: a version can come back after a delete, so a stale holder could overwrite a new one."""

    def delete(self, key: str, *, version: int | None = None) -> bool:
        deleted = super().delete(key, version=version)
        self._versions = itertools.count(1)
        return deleted


def main() -> None:
    check_store(MemoryStore)
    print("MemoryStore keeps the contract")

    with tempfile.TemporaryDirectory() as tmp:
        counter = itertools.count()
        check_store(lambda: SQLiteStore(Path(tmp) / f"{next(counter)}.db"))
    print("SQLiteStore keeps the contract")

    try:
        check_store(ForgetfulStore, modes=("sync",))
    except AssertionError as exc:
        print("ForgetfulStore:", exc)


if __name__ == "__main__":
    main()
