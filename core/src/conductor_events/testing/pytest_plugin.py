"""The conformance kit's pytest plugin: the ``--conformance-full`` option and the
``conformance`` marker (``-m conformance`` selects the kit's tests, ``-m "not conformance"``
leaves them out).

Enable it with ``-p conductor_events.testing.pytest_plugin`` or, in the top-level
``conftest.py``, ``pytest_plugins = ["conductor_events.testing.pytest_plugin"]``. It is not
registered as a ``pytest11`` entry point, so installing conductor-events changes nobody's
pytest runs. Without it the kit still runs, in the mode each test class chose, unmarked (the
marker is added here rather than on the class so that a run without the plugin does not meet
an unknown marker under ``--strict-markers``).
"""

from __future__ import annotations

import pytest

from conductor_events.testing.suite import FULL_DEST, FULL_OPTION, QueueConformance


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conductor-events", "conductor-events conformance kit")
    group.addoption(
        FULL_OPTION,
        action="store_true",
        dest=FULL_DEST,
        default=False,
        help="run the queue conformance scenarios with full counts, also for test classes "
        "that chose the short mode",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: the queue conformance kit")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the kit's tests before ``-m`` deselects (hence ``tryfirst``)."""
    for item in items:
        cls = getattr(item, "cls", None)
        if isinstance(cls, type) and issubclass(cls, QueueConformance):
            item.add_marker(pytest.mark.conformance)


def pytest_report_header(config: pytest.Config) -> str:
    full = bool(config.getoption(FULL_DEST))
    mode = "full counts" if full else f"short where a plugin chose it ({FULL_OPTION}: full)"
    return f"conductor-events conformance: {mode}"
