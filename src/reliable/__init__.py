"""reliable: reliability primitives that turn a script into a system.

See https://github.com/reliable-py/reliable and the docs/ folder.
"""

from importlib.metadata import version as _version

from ._config import configure
from ._errors import (
    AlreadyRunningError,
    CircuitOpenError,
    ConfigError,
    IdempotencyConflictError,
    IdempotencyError,
    InProgressError,
    LeaseLostError,
    LockError,
    ReliableError,
    StoreError,
    StoreUnavailableError,
)

__version__ = _version("reliable")

__all__ = [
    "AlreadyRunningError",
    "CircuitOpenError",
    "ConfigError",
    "IdempotencyConflictError",
    "IdempotencyError",
    "InProgressError",
    "LeaseLostError",
    "LockError",
    "ReliableError",
    "StoreError",
    "StoreUnavailableError",
    "__version__",
    "configure",
]
