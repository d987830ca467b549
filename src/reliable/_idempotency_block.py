"""`idempotency()`: the block form of `reliable.idempotent`, for work that is not a function."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal

from . import _idempotency_finish as finish
from . import _idempotency_flow as flow
from ._config import StoreLike, resolve_store
from ._errors import ConfigError
from ._idempotency_core import Call, Policy
from ._idempotent import DEFAULT_MAX_RESULT_BYTES, ErrorTypes, adrive, async_store, drive, options, owner
from ._internal._durations import Duration
from ._keys import canonical, digest, store_key

__all__ = ["IdempotencyBlock", "idempotency"]


class IdempotencyBlock:
    """One use of `idempotency`: tells whether this caller must do the work, and stores its result.

    Attributes:
        needed: True when this caller holds the key and must do the work; False on a replay.
        result: On a replay, the stored result. When needed, set it to the work's result
            before the block ends; it is stored when the block exits without an exception.

    .. versionadded:: 0.1.0
    """

    def __init__(self, policy: Policy, key: str, fingerprint: str | None, store: StoreLike | None) -> None:
        self._policy = policy
        self._key = key
        self._fingerprint = fingerprint
        self._store = store
        self._resolved: Any = None
        self._claimed: flow.Claimed | None = None
        self.needed = False
        self.result: Any = None

    def __repr__(self) -> str:
        return f"<idempotency {self._key!r} needed={self.needed}>"

    def _begin(self) -> Call:
        if self._claimed is not None:
            raise ConfigError("an idempotency block can be entered once; call reliable.idempotency() again")
        return Call(self._key, self._fingerprint, owner())

    def _entered(self, claimed: flow.Claimed) -> IdempotencyBlock:
        self._claimed = claimed
        self.needed = not claimed.replayed
        self.result = claimed.result
        return self

    def __enter__(self) -> IdempotencyBlock:
        call = self._begin()
        self._resolved = resolve_store(self._store)
        return self._entered(drive(self._resolved, flow.enter(self._policy, self._resolved, call)))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        claimed = self._claimed
        if claimed is None or claimed.replayed:
            return
        if exc is None:
            drive(self._resolved, finish.succeed(self._policy, self._resolved, claimed, self.result))
        else:
            drive(self._resolved, finish.fail(self._policy, self._resolved, claimed, exc))

    async def __aenter__(self) -> IdempotencyBlock:
        call = self._begin()
        self._resolved = async_store(self._store)
        return self._entered(await adrive(self._resolved, flow.enter(self._policy, self._resolved, call)))

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        claimed = self._claimed
        if claimed is None or claimed.replayed:
            return
        if exc is None:
            await adrive(self._resolved, finish.succeed(self._policy, self._resolved, claimed, self.result))
        else:
            await adrive(self._resolved, finish.fail(self._policy, self._resolved, claimed, exc))


def idempotency(
    key: str,
    *,
    name: str = "block",
    ttl: Duration | None = "24h",
    lease: Duration = "60s",
    store: StoreLike | None = None,
    on_in_progress: Literal["wait", "raise"] = "wait",
    cache_errors: ErrorTypes = (),
    serializer: Any = "json",
    fingerprint: Any = None,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> IdempotencyBlock:
    """Do the work of a ``with`` block once per *key*; later entries replay its stored result.

    >>> import reliable
    >>> from reliable.stores.memory import MemoryStore
    >>> store = MemoryStore()
    >>> for attempt in range(2):
    ...     with reliable.idempotency("invoice:42", store=store) as step:
    ...         if step.needed:
    ...             step.result = f"sent on attempt {attempt}"
    ...     print(step.result)
    sent on attempt 0
    sent on attempt 0

    Works with ``with`` and ``async with``. The settings mean what they mean for
    `reliable.idempotent`.

    Args:
        key: What identifies the work (a non-empty str).
        name: The namespace of *key* (shared with ``@idempotent(name=...)``).
        ttl: How long the completed record is kept; None keeps it forever.
        lease: How long the claim lasts if its holder dies; renewed while the block runs.
        store: The store, a store URL, or None for the configured default.
        on_in_progress: ``"wait"`` for the running block's result, or ``"raise"`` `InProgressError`.
        cache_errors: Exception types recorded as the outcome and re-raised on replay.
        serializer: ``"json"``, ``"pickle"``, or an object with ``dumps`` and ``loads``.
        fingerprint: A value describing the request (the payload); a later entry with the
            same key and a different value raises `IdempotencyConflictError`. None: no check.
        max_result_bytes: Larger results are not stored (the work is still marked done).

    Returns:
        An `IdempotencyBlock` to use in ``with`` or ``async with``.

    Raises:
        ConfigError: a setting or the key is invalid, or *fingerprint* has no canonical form.

    .. versionadded:: 0.1.0
    """
    if not isinstance(key, str) or not key:
        raise ConfigError(f"key={key!r} is invalid; pass a non-empty str", parameter="key", value=key)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name={name!r} is invalid; pass a non-empty str", parameter="name", value=name)
    settings = options(
        ttl=ttl,
        lease=lease,
        store=store,
        on_in_progress=on_in_progress,
        cache_errors=cache_errors,
        serializer=serializer,
        max_result_bytes=max_result_bytes,
    )
    checked: str | None = None
    if fingerprint is not None:
        try:
            checked = digest(canonical(fingerprint))
        except TypeError as exc:
            msg = f"fingerprint of type {type(fingerprint).__qualname__} cannot be compared ({exc}); pass plain data"
            raise ConfigError(msg, parameter="fingerprint") from None
    return IdempotencyBlock(Policy(operation=name, **settings), store_key(name, key), checked, store)
