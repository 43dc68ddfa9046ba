"""Logging set-up: :func:`configure_logging` for the command line and services, and the
library's quiet default for applications that set up nothing.

Library modules only call ``structlog.get_logger(__name__)``, never :func:`configure_logging`.
An entry point (the CLI, a service) calls it once: structlog is routed through the standard
library's logging, so an application embedding conductor-events keeps control of handlers and
levels. Readable console lines on a terminal, JSON lines otherwise.

An application that never configures structlog must not get the library's events on standard
output (structlog's own default prints every event, debug included, there). So the first
:class:`~conductor_events.plugins.PluginHost` calls :func:`log_through_stdlib_unless_configured`:
if nobody has configured structlog by then, its events go to the standard library's loggers,
which say nothing below WARNING until the application sets up ``logging``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from conductor_events.config.masking import masked_entry

_HANDLER_MARK = "_conductor_events_handler"


def mask_secrets(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask every field of a log line by the one masking rule: values whose key names a
    secret, ``SecretStr`` values, and secrets inside settings, maps and lists."""
    for key, value in event_dict.items():
        if key != "event":
            event_dict[key] = masked_entry(key, value)
    return event_dict


def log_through_stdlib_unless_configured() -> None:
    """Send structlog's events to the standard library's loggers, unless structlog is configured.

    Called on first use of the library rather than at import, so an application that
    configures structlog at start-up (``configure`` or ``configure_once``) finds it untouched;
    one that configures it later replaces this. Each event becomes one stdlib record on the
    logger of its module's name, as ``event key=value ...`` with secrets masked, and an
    exception's traceback is left to the stdlib handler. Unconfigured stdlib logging shows
    WARNING and above on standard error and nothing on standard output.
    """
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            mask_secrets,
            _to_stdlib_record,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


_LOGFMT = structlog.processors.LogfmtRenderer(sort_keys=False)


def _to_stdlib_record(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """The stdlib call's arguments: ``event key=value ...``, a traceback left to the handler."""
    exc_info = event_dict.pop("exc_info", None)
    stack_info = event_dict.pop("stack_info", False)
    event = str(event_dict.pop("event", ""))
    fields = _LOGFMT(logger, method, event_dict)
    message = f"{event} {fields}" if fields else event
    return (message,), {"exc_info": exc_info, "stack_info": stack_info}


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog and the root logger; calling it again replaces the earlier set-up.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        fmt: ``console``, ``json``, or ``auto`` (console on a terminal, JSON otherwise).
        stream: where lines go; standard error by default.
    """
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
