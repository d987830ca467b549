"""Find the callable a fault is aimed at, and patch it for the scope of the fault.

A target is named the way `unittest.mock.patch` names one, with a colon between the
module and the attribute path (``"myjob.api:fetch"``, ``"myjob.api:Client.fetch"``),
or given as ``(owner, "attribute")``, a bound method (``client.chat.completions.create``:
the attribute is patched on that instance), or a module-level function or method
(patched where its module and qualified name find it). As with `unittest.mock`, patch
the name where the code under test looks it up.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from .._errors import ConfigError
from ._actions import Action, arun, run

__all__ = ["Patch", "Target", "locate"]

Target = Union[str, Callable[..., Any], tuple[Any, str]]
"""``"module:attribute.path"``, ``(owner, "attribute")``, a bound method, or a module-level function."""

_MISSING: Any = object()


@dataclass
class Patch:
    """One attribute replaced by a fault wrapper, and how to put it back."""

    point: str
    owner: Any
    name: str
    static: Any = _MISSING
    had_own: bool = False

    def apply(self, decide: Callable[[], Action]) -> None:
        """Replace the attribute with a wrapper that asks *decide* what to do on each call."""
        self.static = inspect.getattr_static(self.owner, self.name)
        self.had_own = self.name in getattr(self.owner, "__dict__", {})
        if isinstance(self.static, staticmethod):
            func, wrap_static = self.static.__func__, True
        elif isinstance(self.static, classmethod):
            func, wrap_static = getattr(self.owner, self.name), True
        elif isinstance(self.owner, type) and inspect.isfunction(self.static):
            func, wrap_static = self.static, False
        else:
            func, wrap_static = getattr(self.owner, self.name), False
        wrapper = _wrapper(func, self.point, decide)
        try:
            setattr(self.owner, self.name, staticmethod(wrapper) if wrap_static else wrapper)
        except (AttributeError, TypeError) as exc:
            msg = (
                f"cannot patch {self.point!r}: {exc}; patch the class instead "
                "('module:Class.method') or pass the object the code under test looks it up on"
            )
            raise ConfigError(msg, target=self.point) from exc

    def restore(self) -> None:
        """Put the original attribute back (or remove the shadowing one)."""
        if self.had_own:
            setattr(self.owner, self.name, self.static)
        else:
            delattr(self.owner, self.name)


def _wrapper(func: Callable[..., Any], point: str, decide: Callable[[], Action]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None)):  # noqa: B004

        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            return await arun(decide(), point, lambda: func(*args, **kwargs))

        return functools.wraps(func)(awrapper)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run(decide(), point, lambda: func(*args, **kwargs))

    return functools.wraps(func)(wrapper)


def locate(target: Target) -> Patch:
    """The `Patch` for *target* (not applied yet). Raises `ConfigError` if it cannot be found or patched."""
    if isinstance(target, str):
        return _by_name(target)
    if isinstance(target, tuple):
        if len(target) != 2 or not isinstance(target[1], str):
            msg = f"target={target!r} is not (owner, 'attribute'); pass e.g. (client.chat.completions, 'create')"
            raise ConfigError(msg, parameter="target", value=target)
        owner, name = target
        if not hasattr(owner, name):
            msg = f"{_describe(owner)} has no attribute {name!r}; check the name of the method to fault"
            raise ConfigError(msg, parameter="target", value=target)
        return Patch(f"{_describe(owner)}.{name}", owner, name)
    if inspect.ismethod(target):
        owner = target.__self__
        return Patch(f"{_describe(owner)}.{target.__name__}", owner, target.__name__)
    if callable(target):
        return _by_qualname(target)
    msg = f"target={target!r} is not a callable, 'module:attribute' or (owner, 'attribute')"
    raise ConfigError(msg, parameter="target", value=target)


def _by_name(target: str) -> Patch:
    module_name, colon, path = target.partition(":")
    if not colon or not module_name or not path:
        msg = (
            f"target {target!r} names no attribute; write 'module:attribute' (e.g. 'myjob.api:fetch'), "
            "or 'store.<operation>' for a store fault point"
        )
        raise ConfigError(msg, parameter="target", value=target)
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"target {target!r}: cannot import module {module_name!r} ({exc}); check the module path"
        raise ConfigError(msg, parameter="target", value=target) from exc
    *parents, name = path.split(".")
    for part in parents:
        owner = _attribute(owner, part, target)
    _attribute(owner, name, target)
    return Patch(target, owner, name)


def _attribute(owner: Any, name: str, target: str) -> Any:
    try:
        return getattr(owner, name)
    except AttributeError as exc:
        msg = f"target {target!r}: {_describe(owner)} has no attribute {name!r}; check the attribute path"
        raise ConfigError(msg, parameter="target", value=target) from exc


def _by_qualname(func: Callable[..., Any]) -> Patch:
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if module and qualname and "<" not in qualname:
        patch = _by_name(f"{module}:{qualname}")
        found = inspect.getattr_static(patch.owner, patch.name, None)
        if getattr(found, "__func__", found) is func:
            return patch
    msg = (
        f"cannot find {func!r} under its module to patch it; pass 'module:attribute' naming where "
        "the code under test looks it up, or (owner, 'attribute')"
    )
    raise ConfigError(msg, parameter="target", value=func)


def _describe(owner: Any) -> str:
    if inspect.ismodule(owner):
        return owner.__name__
    if isinstance(owner, type):
        return f"{owner.__module__}:{owner.__qualname__}"
    return f"{type(owner).__module__}:{type(owner).__qualname__}"
