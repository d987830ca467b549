"""Test helpers: the fake clock, the fault injector and the store conformance suite.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from .._internal._clock import installed
from ._contract import check_store
from ._fake_clock import FakeClock

__all__ = ["FakeClock", "check_store", "installed"]
