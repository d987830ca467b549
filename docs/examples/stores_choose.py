"""Pick the store reliable uses: the SQLite default, RELIABLE_STORE, configure(store=...), URLs.

Run: python docs/examples/stores_choose.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import reliable
from reliable.stores import default_path
from reliable.stores import open as open_store
from reliable.stores.memory import MemoryStore


@reliable.idempotent(key=lambda order_id: f"order:{order_id}", ttl="7d")
def charge(order_id: int) -> str:
    return f"charged order {order_id}"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Nothing configured: SQLite under $XDG_STATE_HOME/reliable/state.db (~/.local/state/... if unset),
        # unless the RELIABLE_STORE environment variable names another store URL.
        os.environ["XDG_STATE_HOME"] = str(Path(tmp) / "state")
        print("default store file:", default_path())
        print("RELIABLE_STORE:", os.environ.get("RELIABLE_STORE", "(unset)"))

        # URLs: memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db (four slashes).
        absolute = f"sqlite:///{Path(tmp) / 'jobs' / 'state.db'}"
        for url in ("memory://", absolute):
            store = open_store(url)
            print(f"{url} -> {store!r}")
            store.close()

        # configure(store=...) in code wins over RELIABLE_STORE; it takes a URL or a store object.
        mine = MemoryStore()
        reliable.configure(store=mine)
        print(charge(7), "| records in my store:", len(mine.scan("")))
        reliable.configure(store=None)  # back to RELIABLE_STORE, else the SQLite default
        mine.close()


if __name__ == "__main__":
    main()
