"""The ``reliable`` command's configuration: store and alert sinks from a file, the environment, flags; logs; traces.

Sources, the first that sets a value wins:

1. command-line flags (``--store``, ``--webhook``, ``--slack``);
2. environment variables: ``RELIABLE_STORE``, ``RELIABLE_ALERT_WEBHOOK`` and
   ``RELIABLE_ALERT_SLACK`` (one URL, or several separated by commas or spaces);
3. a config file named by ``--config`` or ``RELIABLE_CONFIG``: JSON (``.json``), INI
   (``.ini``, ``.cfg``), or TOML (``.toml``: Python 3.11+, or with ``tomli`` installed)::

       # reliable.toml                      ; reliable.ini
       store = "sqlite:////var/lib/jobs/state.db"    [reliable]
       [alerts]                             store = sqlite:////var/lib/jobs/state.db
       webhook = ["https://hooks.example.com/x"]     [alerts]
       slack = ["https://hooks.slack.com/services/..."]   webhook = https://hooks.example.com/x

Webhook URLs are added to the sinks of every source (alerts also always go to the log).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError

__all__ = ["CliConfig", "PlainLines", "add_config_arguments", "load", "logging_to_stderr", "tracing"]

ENV_CONFIG = "RELIABLE_CONFIG"
ENV_WEBHOOK = "RELIABLE_ALERT_WEBHOOK"
ENV_SLACK = "RELIABLE_ALERT_SLACK"


@dataclass(frozen=True)
class CliConfig:
    """What the command line, the environment and the config file say, merged."""

    store: str | None = None
    """A store URL to configure, or None for the library's default (``RELIABLE_STORE``, then SQLite)."""
    webhooks: tuple[str, ...] = ()
    slack: tuple[str, ...] = ()
    source: str | None = None
    """The config file read, if any."""
    extra: dict[str, Any] = field(default_factory=dict)

    def sinks(self) -> list[Any]:
        """The alert sinks: the log, then every webhook."""
        from .alerts import Log, Webhook

        return [Log(), *(Webhook(url) for url in self.webhooks), *(Webhook(url, slack=True) for url in self.slack)]


def add_config_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--store``, ``--config``, ``--webhook`` and ``--slack``."""
    parser.add_argument(
        "--store",
        metavar="URL",
        help="state store URL (default: $RELIABLE_STORE, the config file, or embedded SQLite)",
    )
    parser.add_argument("--config", metavar="FILE", help=f"config file, JSON, INI or TOML (default: ${ENV_CONFIG})")
    parser.add_argument(
        "--webhook", action="append", default=[], metavar="URL", help=f"alert to this webhook (also ${ENV_WEBHOOK})"
    )
    parser.add_argument(
        "--slack", action="append", default=[], metavar="URL", help=f"alert to this Slack-style webhook (${ENV_SLACK})"
    )


def _urls(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(u for u in re.split(r"[,\s]+", value) if u)
    if isinstance(value, (list, tuple)) and all(isinstance(u, str) for u in value):
        return tuple(value)
    msg = f"{where} must be a URL or a list of URLs, not {value!r}; fix the config file"
    raise ConfigError(msg, parameter=where, value=value)


def _read_file(path: str) -> dict[str, Any]:
    """The file's settings as ``{"store": ..., "alerts": {"webhook": ..., "slack": ...}}``."""
    suffix = Path(path).suffix.lower()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the config file {path!r}: {exc.strerror}; fix --config or ${ENV_CONFIG}"
        raise ConfigError(msg, parameter="config", value=path) from exc
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".ini", ".cfg"):
            parser = configparser.ConfigParser()
            parser.read_string(text, source=path)
            data = dict(parser["reliable"]) if parser.has_section("reliable") else {}
            if parser.has_section("alerts"):
                data["alerts"] = dict(parser["alerts"])
        elif suffix == ".toml":
            data = _toml().loads(text)
        else:
            msg = f"config file {path!r} has an unknown extension; name it .json, .ini, .cfg or .toml"
            raise ConfigError(msg, parameter="config", value=path)
    except ConfigError:
        raise
    except Exception as exc:
        msg = f"config file {path!r} is not valid {suffix[1:].upper()}: {exc}"
        raise ConfigError(msg, parameter="config", value=path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("alerts", {}), dict):
        msg = f"config file {path!r} must hold a table with 'store' and an 'alerts' table (webhook, slack)"
        raise ConfigError(msg, parameter="config", value=path)
    return data


def _toml() -> Any:
    for name in ("tomllib", "tomli"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    msg = "TOML config files need Python 3.11+ or `pip install tomli`; or write the file as JSON or INI"
    raise ConfigError(msg, parameter="config")


def load(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> CliConfig:
    """Merge flags, environment and config file into a `CliConfig`.

    Raises:
        ConfigError: the config file is missing or invalid, or a URL is not a store or webhook URL.
    """
    env = os.environ if environ is None else environ
    path = getattr(args, "config", None) or env.get(ENV_CONFIG) or None
    data = _read_file(path) if path else {}
    alerts = data.get("alerts") or {}
    store = getattr(args, "store", None) or env.get("RELIABLE_STORE") or data.get("store") or None
    if store is not None and not isinstance(store, str):
        msg = f"store must be a URL string, not {store!r}"
        raise ConfigError(msg, parameter="store", value=store)
    if store is not None:
        from ._config import _validate_url

        _validate_url(store)
    webhooks = (*getattr(args, "webhook", ()), *_urls(env.get(ENV_WEBHOOK), ENV_WEBHOOK))
    slack = (*getattr(args, "slack", ()), *_urls(env.get(ENV_SLACK), ENV_SLACK))
    config = CliConfig(
        store=store,
        webhooks=webhooks + _urls(alerts.get("webhook"), "alerts.webhook"),
        slack=slack + _urls(alerts.get("slack"), "alerts.slack"),
        source=path,
    )
    config.sinks()  # a bad URL fails here, before anything runs
    return config


# -- log lines on stderr -------------------------------------------------------------------


class PlainLines(logging.Formatter):
    """``reliable: message`` (and the level for warnings and errors): for people and cron mail."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"reliable: {level}{record.getMessage()}"


class _NoTraceback(logging.Filter):
    """Drop the traceback of the command's own failure: the message says all, the stack is `reliable`'s."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ._cli_run_attempt import CommandFailed, Interrupted

        if record.exc_info and isinstance(record.exc_info[1], (CommandFailed, Interrupted)):
            record.exc_info = None
            record.exc_text = None
        return True


@contextlib.contextmanager
def logging_to_stderr(*, as_json: bool, level: int) -> Iterator[logging.Handler]:
    """Send the records of every ``reliable.*`` logger at *level* and above to stderr while the block runs."""
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        from .logging import JSONFormatter

        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(PlainLines())
    handler.addFilter(_NoTraceback())
    logger = logging.getLogger("reliable")
    previous = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


# -- traces ---------------------------------------------------------------------------------


@contextlib.contextmanager
def tracing(environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """Export the run's span as ``OTEL_TRACES_EXPORTER`` says (``console``, ``otlp``), unless a provider is set.

    Without the variable (or when something such as ``opentelemetry-instrument`` already
    installed a tracer provider) this does nothing. The span's parent comes from the
    ``TRACEPARENT`` environment variable when the caller set one.
    """
    from opentelemetry import context, trace
    from opentelemetry.propagate import extract

    env = os.environ if environ is None else environ
    token = None
    if env.get("TRACEPARENT"):
        carrier = {"traceparent": env["TRACEPARENT"], "tracestate": env.get("TRACESTATE", "")}
        token = context.attach(extract(carrier))
    provider = None
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip() not in ("", "none")]
    if names and isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        provider = _provider(names)
        if provider is not None:
            trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        if provider is not None:
            with contextlib.suppress(Exception):
                provider.shutdown()
        if token is not None:
            context.detach(token)


def _provider(names: list[str]) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "reliable")})
    )
    added = False
    for name in names:
        if name == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
            added = True
        elif name == "otlp":
            exporter = _otlp_exporter()
            if exporter is not None:
                provider.add_span_processor(BatchSpanProcessor(exporter))
                added = True
        else:
            logging.getLogger("reliable.run").warning(
                "OTEL_TRACES_EXPORTER=%s is not supported by `reliable`; use console or otlp", name
            )
    return provider if added else None


def _otlp_exporter() -> Any:
    for module in (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    ):
        with contextlib.suppress(ImportError):
            return importlib.import_module(module).OTLPSpanExporter()
    logging.getLogger("reliable.run").warning(
        "OTEL_TRACES_EXPORTER=otlp needs `pip install opentelemetry-exporter-otlp`; the span is not exported"
    )
    return None
