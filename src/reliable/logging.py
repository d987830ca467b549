"""Structured logs: `JSONFormatter` for the standard library, `setup` in one call, and a structlog processor.

Every record `reliable` writes carries its fields under ``record.reliable`` (a dict:
``event``, ``reliable.operation``, ``reliable.outcome``, ``reliable.duration``,
``trace_id``, ``span_id``, ``error.type``, ...). `JSONFormatter` puts them at the top
level of one JSON object per line, next to the time, level, logger and message, so a
log pipeline can index them.

For a program with no logging set up yet::

    import reliable.logging
    reliable.logging.setup()            # JSON lines on stderr, level INFO

With structlog, add `merge_reliable_fields` to the ``foreign_pre_chain`` of
``structlog.stdlib.ProcessorFormatter`` so records from `reliable` carry their fields.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, MutableMapping
from datetime import datetime, timezone
from typing import IO, Any

__all__ = ["JSONFormatter", "merge_reliable_fields", "setup"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JSONFormatter(logging.Formatter):
    """Format each record as one line of JSON.

    Keys: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, then the fields of
    ``record.reliable``, then (with *extra*) any other attribute given through
    ``logger.info(..., extra={...})`` (OpenTelemetry's ``otelTraceID`` and ``otelSpanID``
    included), then ``exception`` (the formatted traceback) when there is one. Values JSON
    cannot encode are written with ``str()``.

    Args:
        extra: Include the record's other non-standard attributes.
        static: Fields added to every line (``{"service": "billing"}``).

    >>> import logging
    >>> record = logging.LogRecord("reliable.observed", logging.INFO, __file__, 1, "sync ok", None, None)
    >>> record.reliable = {"reliable.operation": "sync", "reliable.outcome": "ok"}
    >>> line = json.loads(JSONFormatter().format(record))
    >>> line["level"], line["reliable.operation"], line["message"]
    ('INFO', 'sync', 'sync ok')

    .. versionadded:: 0.1.0
    """

    def __init__(self, *, extra: bool = True, static: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.extra = extra
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
        }
        fields = getattr(record, "reliable", None)
        if isinstance(fields, Mapping):
            data.update(fields)
        if self.extra:
            for key, value in record.__dict__.items():
                if key not in _STANDARD and key != "reliable" and not key.startswith("_"):
                    data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
            if record.exc_info[0] is not None:
                data.setdefault("error.type", record.exc_info[0].__qualname__)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def setup(
    level: int | str = logging.INFO,
    *,
    stream: IO[str] | None = None,
    json: bool = True,
    force: bool = False,
) -> logging.Handler | None:
    """Log to *stream* (default: stderr) in JSON lines, in one call, if the program has no logging set up.

    Like `logging.basicConfig`: when the root logger already has handlers, nothing changes
    and None is returned (pass *force* to replace them). Calling it again returns the
    handler it installed before.

    Args:
        level: The root logger's level.
        stream: Where to write.
        json: JSON lines (`JSONFormatter`); False for plain text.
        force: Remove the root logger's handlers first.

    Returns:
        The handler installed, or None.

    .. versionadded:: 0.1.0
    """
    root = logging.getLogger()
    mine = [h for h in root.handlers if getattr(h, "_reliable_setup", False)]
    if mine and not force:
        root.setLevel(level)
        return mine[0]
    if root.handlers and not force:
        return None
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter = JSONFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler._reliable_setup = True  # type: ignore[attr-defined]  # marks the handler as ours
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def merge_reliable_fields(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor: copy ``record.reliable`` of a standard-library record into the event dict.

    Use it in ``structlog.stdlib.ProcessorFormatter(foreign_pre_chain=[..., merge_reliable_fields])``.

    >>> import logging
    >>> record = logging.LogRecord("reliable.retry", logging.WARNING, __file__, 1, "retrying", None, None)
    >>> record.reliable = {"event": "reliable.retry.attempt", "reliable.attempt": 2}
    >>> merge_reliable_fields(None, "warning", {"event": "retrying", "_record": record})["reliable.attempt"]
    2

    structlog's own ``event`` key (the message) is kept; reliable's event name goes under ``reliable.event``.

    .. versionadded:: 0.1.0
    """
    record = event_dict.get("_record")
    fields = getattr(record, "reliable", None)
    if isinstance(fields, Mapping):
        for key, value in fields.items():
            event_dict.setdefault("reliable.event" if key == "event" else key, value)
    return event_dict
