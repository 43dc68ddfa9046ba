"""An application that never configures logging hears nothing from the library below WARNING,
and nothing at all on standard output; one that configures structlog keeps its set-up."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
import structlog

from conductor_events.logging import log_through_stdlib_unless_configured
from conductor_events.plugins import PluginHost

UNCONFIGURED_APP = textwrap.dedent(
    """
    import structlog
    from conductor_events import PluginHost

    PluginHost(environ={})
    log = structlog.get_logger("conductor_events.example")
    log.debug("example.debug", detail=1)
    log.info("example.info", detail=2)
    log.warning("example.warning", sink="local:orders", password="hunter2-secret")
    try:
        raise RuntimeError("broken on purpose")
    except RuntimeError:
        log.exception("example.failed", sink="local:orders")
    """
)


@pytest.fixture
def unconfigured() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_an_unconfigured_application_gets_warnings_on_stderr_and_nothing_on_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-c", UNCONFIGURED_APP],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == ""
    assert "example.debug" not in done.stderr
    assert "example.info" not in done.stderr
    lines = done.stderr.splitlines()
    assert "example.warning sink=local:orders password=******" in lines
    assert "hunter2" not in done.stderr
    assert "example.failed sink=local:orders" in lines
    assert "RuntimeError: broken on purpose" in lines


def test_the_library_routes_through_stdlib_on_first_use(
    unconfigured: None, caplog: pytest.LogCaptureFixture
) -> None:
    PluginHost(environ={})
    with caplog.at_level(logging.INFO, logger="conductor_events"):
        structlog.get_logger("conductor_events.example").info("example.info", queue="orders")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("conductor_events.example", logging.INFO, "example.info queue=orders")
    ]


def test_a_host_that_configured_structlog_first_keeps_its_configuration(
    unconfigured: None,
) -> None:
    ours = [structlog.processors.KeyValueRenderer()]
    structlog.configure(processors=ours, logger_factory=structlog.PrintLoggerFactory())
    PluginHost(environ={})
    log_through_stdlib_unless_configured()
    config = structlog.get_config()
    assert config["processors"] is ours
    assert isinstance(config["logger_factory"], structlog.PrintLoggerFactory)


def test_a_host_configuring_later_replaces_the_default(
    unconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    PluginHost(environ={})
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.PrintLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    structlog.get_logger("conductor_events.example").debug("example.debug", n=1)
    assert capsys.readouterr().out == "n=1 event='example.debug'\n"
