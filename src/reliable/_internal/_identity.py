"""Keys by object identity that stay unique while they exist."""

from __future__ import annotations

from typing import Any

__all__ = ["Identity"]


class Identity:
    """Hashable and equal by the identity of *obj*, which it keeps alive.

    ``id(obj)`` alone is not a safe key for entries that may outlive *obj*: once *obj* is
    garbage-collected, a new object can get the same id and inherit the entry (a new store
    would find a lock "already held" by a dead store's forgotten lease). Holding *obj*
    prevents that for as long as the entry exists.
    """

    __slots__ = ("_hash", "obj")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self._hash = id(obj)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.obj is self.obj

    def __repr__(self) -> str:
        return f"Identity({self.obj!r})"
