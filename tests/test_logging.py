"""Logging: one idempotent set-up at the entry point, routed through the standard library, and
no secret of any installed plugin in a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from conductor_events.config import load_configuration
from conductor_events.config.binding import env_name, known_keys
from conductor_events.logging import configure_logging
from conductor_events.plugins import PluginHost


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_conductor_events_handler", False)]:
        root.removeHandler(handler)


def test_configure_logging_is_idempotent_and_json_off_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    configure_logging("info", "auto", stream)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_conductor_events_handler", 0)]
    assert len(ours) == 1
    structlog.get_logger("conductor_events.test").info("queue.opened", queue="orders")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "queue.opened"
    assert record["queue"] == "orders"
    assert record["level"] == "info"
    assert record["logger"] == "conductor_events.test"


def test_library_logs_reach_the_host_through_stdlib(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("debug", "json", io.StringIO())
    with caplog.at_level(logging.WARNING, logger="conductor_events"):
        structlog.get_logger("conductor_events.x").warning("publish.failed", sink="local:q")
    assert [r.name for r in caplog.records] == ["conductor_events.x"]
    logging.getLogger("conductor_events").setLevel(logging.ERROR)
    try:
        stream = io.StringIO()
        configure_logging("debug", "json", stream)
        structlog.get_logger("conductor_events.x").warning("silenced.by.host")
        assert "silenced.by.host" not in stream.getvalue()
    finally:
        logging.getLogger("conductor_events").setLevel(logging.NOTSET)


def test_no_secret_of_any_installed_plugin_reaches_a_log_line() -> None:
    host = PluginHost(environ={})
    secrets: dict[str, str] = {}
    for name, registered in host.queue_types().items():
        for suffix, shape in known_keys(registered.queue_type.settings):
            if shape.secret and shape.kind == "scalar":
                key = f"conductor.event-queues.{name}.{suffix}"
                secrets[env_name(key)] = f"S3CRET-{len(secrets)}-VALUE-LONG-ENOUGH"
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    config = load_configuration([], host, secrets)
    log = structlog.get_logger("conductor_events.test")
    for name in host.queue_types():
        log.info("settings", queue_type=name, settings=config.settings(name))
    for problem in config.problems:
        log.warning("config.problem", problem=str(problem))
    output = stream.getvalue()
    assert output.count('"event": "settings"') == len(host.queue_types())
    assert "S3CRET-" not in output
