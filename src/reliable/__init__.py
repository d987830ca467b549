"""reliable: reliability primitives that turn a script into a system.

See https://github.com/reliable-py/reliable and the docs/ folder.
"""

from importlib.metadata import version as _version

from ._attempts import attempts
from ._budget import RetryBudget
from ._classify import Classification, classify, transient
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
from ._idempotency_block import idempotency
from ._idempotent import idempotent
from ._lease import SKIPPED, Lease, Skipped
from ._retry import retry
from ._single_instance import single_instance

__version__ = _version("reliable")

__all__ = [
    "AlreadyRunningError",
    "CircuitOpenError",
    "Classification",
    "ConfigError",
    "IdempotencyConflictError",
    "IdempotencyError",
    "InProgressError",
    "Lease",
    "LeaseLostError",
    "LockError",
    "ReliableError",
    "RetryBudget",
    "SKIPPED",
    "Skipped",
    "StoreError",
    "StoreUnavailableError",
    "__version__",
    "attempts",
    "classify",
    "configure",
    "idempotency",
    "idempotent",
    "retry",
    "single_instance",
    "transient",
]
