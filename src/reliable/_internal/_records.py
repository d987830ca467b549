"""Log records of the telemetry core, built without the stdlib's stack walk.

``Logger.log`` spends about half of a record's cost in ``findCaller`` (a walk up the
stack past the ``logging`` module's frames), and for a record `reliable` writes it would
land in the telemetry core every time. So the core checks ``isEnabledFor`` once and
writes the record itself (`write_record`), with caller information that says something:
the user's function when a primitive knows it (`caller_of`, computed once per decorated
function), the ``with`` block for a context manager (`outside_caller`), else the telemetry
core. Everything else users rely on is the stdlib's own path: the record factory, a
``Logger`` subclass's ``makeRecord``, ``extra``-style attributes (``record.reliable``),
the logger's filters and ``disabled`` flag, handlers and propagation.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import Any

__all__ = ["Caller", "caller_of", "outside_caller", "write_record"]

Caller = tuple[str, int, str]
"""A log record's caller information: ``(pathname, lineno, funcName)``."""

_LogRecord = logging.LogRecord
_STOCK_MAKE_RECORD = logging.Logger.makeRecord


def write_record(
    logger: logging.Logger,
    level: int,
    message: str,
    fields: dict[str, Any],
    exception: BaseException | None,
    caller: Caller,
) -> None:
    """What ``logger.log(level, message, exc_info=..., extra={"reliable": fields})`` does, minus finding the caller.

    The caller of a record `reliable` writes is not where the stack walk of ``Logger.findCaller``
    would land (this module), so *caller* says it. The rest is the stdlib's own path: the record
    comes from the record factory (``logging.setLogRecordFactory``) through the logger's
    ``makeRecord`` (a ``Logger`` subclass may override it), and ``Logger.handle`` applies the
    logger's ``disabled`` flag and filters, then the handlers and propagation. Only when both
    are the stdlib's own is the record built by ``LogRecord`` directly, with ``record.reliable``
    set as ``extra`` would have set it (``makeRecord``'s check of the ``extra`` keys cannot
    fail for ``reliable``, not a ``LogRecord`` attribute).
    """
    exc_info = (type(exception), exception, exception.__traceback__) if exception is not None else None
    pathname, lineno, func = caller
    if logging.getLogRecordFactory() is _LogRecord and type(logger).makeRecord is _STOCK_MAKE_RECORD:
        record = _LogRecord(logger.name, level, pathname, lineno, message, (), exc_info, func)
        record.__dict__["reliable"] = fields  # what makeRecord does with extra={"reliable": fields}
    else:
        record = logger.makeRecord(
            logger.name, level, pathname, lineno, message, (), exc_info, func, {"reliable": fields}
        )
    logger.handle(record)


def caller_of(function: Any) -> Caller | None:
    """The caller information of records about *function*: its file, first line and name (None if unknown).

    Computed once, when a primitive wraps *function*, and passed as ``caller=`` to `emit` /
    `report`, so ``%(pathname)s:%(lineno)d %(funcName)s`` in a log format names the user's
    code instead of this module. The first line of a decorated function is its first decorator's.
    """
    try:
        code = getattr(inspect.unwrap(function), "__code__", None)
    except ValueError:  # a __wrapped__ cycle
        return None
    if code is None or not isinstance(code.co_filename, str):
        return None
    return (code.co_filename, code.co_firstlineno, code.co_name)


def outside_caller() -> Caller | None:
    """The first frame on the stack outside the ``reliable`` package, as caller information (None if none).

    For records about a ``with`` block (no function to name): the block's function and line.
    Costs a short frame walk, so it is only done for a record that is written.
    """
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith(_PACKAGE):
            return (code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back  # type: ignore[assignment]  # None ends the loop
    return None


_PACKAGE = os.path.dirname(os.path.dirname(outside_caller.__code__.co_filename)) + os.sep
"""The ``reliable`` package's folder, spelled as its modules' code objects spell it."""
