"""Identity keys: equal only for the same object, and they keep it alive so its id cannot be reused."""

from __future__ import annotations

import gc
import weakref

from reliable._internal._identity import Identity


class _Thing:
    pass


def test_equal_only_for_the_same_object() -> None:
    """Two keys of one object are equal and hash alike; keys of two objects are not equal."""
    a, b = _Thing(), _Thing()

    assert Identity(a) == Identity(a)
    assert hash(Identity(a)) == hash(Identity(a))
    assert Identity(a) != Identity(b)
    assert Identity(a) != a


def test_key_keeps_its_object_alive() -> None:
    """While a key exists its object is not collected, so no new object can take its id and match the key."""
    thing = _Thing()
    ref = weakref.ref(thing)
    key = Identity(thing)
    del thing
    gc.collect()

    assert ref() is key.obj
    assert "Identity(" in repr(key)
