"""Logging set-up for the command line and services; library code never calls this.

Library modules only call ``structlog.get_logger(__name__)``. An entry point (the CLI, a
service) calls :func:`configure_logging` once: structlog is routed through the standard
library's logging, so an application embedding conductor-events keeps control of handlers and
levels. Readable console lines on a terminal, JSON lines otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from pydantic import SecretStr

from conductor_events.config.binding import is_secret_name

_HANDLER_MARK = "_conductor_events_handler"
MASK = "******"


def mask_secrets(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace values whose key names a secret, and any ``SecretStr``, with a mask."""
    for key, value in event_dict.items():
        if isinstance(value, SecretStr) or (key != "event" and is_secret_name(key) and value):
            event_dict[key] = MASK
    return event_dict


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
