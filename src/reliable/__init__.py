"""reliable: reliability primitives that turn a script into a system.

See https://github.com/reliable-py/reliable and the docs/ folder.
"""

from importlib.metadata import version as _version

from . import alerts
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
from ._health import health
from ._health_types import OperationHealth
from ._idempotency_block import idempotency
from ._idempotent import idempotent
from ._lease import SKIPPED, Lease, Skipped
from ._observed import Observed, ObservedRun, observed
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
    "Observed",
    "ObservedRun",
    "OperationHealth",
    "ReliableError",
    "RetryBudget",
    "SKIPPED",
    "Skipped",
    "StoreError",
    "StoreUnavailableError",
    "__version__",
    "alerts",
    "attempts",
    "classify",
    "configure",
    "health",
    "idempotency",
    "idempotent",
    "observed",
    "retry",
    "single_instance",
    "transient",
]
