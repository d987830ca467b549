"""`reliable.logging`: the JSON formatter, the one-call setup and the structlog processor."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

import reliable
import reliable.logging as rlogging


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger with its handlers and level restored after the test.

    pytest adds its capture handlers to the root logger for the call phase, after fixtures ran,
    so tests that need a root logger without handlers call `bare` first.
    """
    logger = logging.getLogger()
    handlers, level = list(logger.handlers), logger.level
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)


def bare(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def make_record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("reliable.observed", logging.WARNING, __file__, 10, "sync %s", ("degraded",), None)
    record.created = 0.0
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_puts_reliable_fields_at_the_top_level() -> None:
    """One JSON object: time (UTC), level, logger, message, then the fields of record.reliable and extras."""
    record = make_record(reliable={"reliable.operation": "sync", "reliable.outcome": "degraded"}, request_id="r-1")

    line = json.loads(rlogging.JSONFormatter(static={"service": "billing"}).format(record))

    assert {
        "time": "1970-01-01T00:00:00.000+00:00",
        "level": "WARNING",
        "logger": "reliable.observed",
        "message": "sync degraded",
        "service": "billing",
        "reliable.operation": "sync",
        "reliable.outcome": "degraded",
        "request_id": "r-1",
    } == line


def test_json_formatter_exception_and_unencodable_values() -> None:
    """A record with an exception carries the traceback and error.type; values JSON cannot encode become str()."""
    try:
        raise KeyError("row")
    except KeyError:
        import sys

        record = make_record(exc_info=sys.exc_info(), payload=object())

    line = json.loads(rlogging.JSONFormatter(extra=True).format(record))

    assert ("KeyError", True) == (line["error.type"], line["exception"].startswith("Traceback"))
    assert line["payload"].startswith("<object object")


def test_json_formatter_without_extra() -> None:
    """extra=False leaves out attributes other than record.reliable."""
    line = json.loads(rlogging.JSONFormatter(extra=False).format(make_record(request_id="r-1")))

    assert "request_id" not in line


def test_setup_logs_observed_calls_as_json(root: logging.Logger) -> None:
    """setup() installs a JSON handler on a root logger without one; an observed call then logs one line."""
    bare(root)
    stream = io.StringIO()
    handler = rlogging.setup(stream=stream)

    reliable.observed("json-demo")(lambda: 1)()

    assert handler is not None
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert ("INFO", "json-demo", "ok", "reliable.observed.finished") == (
        line["level"],
        line["reliable.operation"],
        line["reliable.outcome"],
        line["event"],
    )


def test_setup_leaves_an_existing_configuration_alone(root: logging.Logger) -> None:
    """With handlers already on the root logger, setup() changes nothing and returns None (unless force=True)."""
    bare(root)
    root.addHandler(logging.StreamHandler(io.StringIO()))

    untouched = rlogging.setup()
    forced = rlogging.setup(force=True, json=False)

    assert (None, [forced]) == (untouched, root.handlers)


def test_setup_twice_returns_the_same_handler(root: logging.Logger) -> None:
    """Calling setup() again returns the handler it installed the first time and only sets the level."""
    bare(root)
    first = rlogging.setup(level="WARNING")
    second = rlogging.setup(level="DEBUG")

    assert (first, [first], logging.DEBUG) == (second, root.handlers, root.level)


def test_structlog_processor_merges_reliable_fields() -> None:
    """merge_reliable_fields copies record.reliable into the structlog event dict, reliable's event renamed."""
    record = make_record(reliable={"event": "reliable.retry.attempt", "reliable.attempt": 2})

    merged = rlogging.merge_reliable_fields(None, "warning", {"event": "retrying", "_record": record})

    assert {
        "event": "retrying",
        "_record": record,
        "reliable.event": "reliable.retry.attempt",
        "reliable.attempt": 2,
    } == merged
