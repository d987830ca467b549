"""State stores: the `Store` protocol, its async twin, and `open()` for store URLs.

Importing this package imports no backend driver. Backends are imported by path::

    from reliable.stores.memory import MemoryStore
    from reliable.stores.sqlite import SQLiteStore
    from reliable.stores.redis import RedisStore        # pip install 'reliable[redis]'
    from reliable.stores.postgres import PostgresStore  # pip install 'reliable[postgres]'
"""

from __future__ import annotations

from ._open import default_path, open
from ._protocol import AsyncStore, Record, Store, Value

__all__ = ["AsyncStore", "Record", "Store", "Value", "default_path", "open"]
