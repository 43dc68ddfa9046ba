"""The kit's plugin checks tell a lazy import from an eager one, and a current key table from a
stale one."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor_events.local.settings import LocalQueueSettings
from conductor_events.testing.plugin_checks import (
    assert_key_table_current,
    generated_block,
    sdk_import_report,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_import_report_sees_a_module_arrive_on_first_use(tmp_path: Path) -> None:
    report = sdk_import_report(
        "conductor_events.local.plugin",
        ["sqlite3"],
        sink="local:orders",
        properties={"conductor.event-queues.local.path": str(tmp_path / "q.db")},
    )
    assert report.queue_types == ["local"]
    assert report.at_load == []  # the local plugin imports its store only in connect
    assert "sqlite3" in report.after_use


def test_import_report_sees_an_eager_import() -> None:
    report = sdk_import_report("conductor_events.local.plugin", ["pydantic"])
    assert "pydantic" in report.at_load


def test_key_table_check_passes_on_current_docs_and_fails_on_stale_ones(tmp_path: Path) -> None:
    doc = DOCS / "local-queue.md"
    assert_key_table_current(doc, "local", LocalQueueSettings)
    stale = tmp_path / "stale.md"
    stale.write_text(doc.read_text().replace("| `5` |", "| `6` |"))
    with pytest.raises(AssertionError, match="key table is out of date"):
        assert_key_table_current(stale, "local", LocalQueueSettings)
    with pytest.raises(AssertionError, match="has no generated block 'config:sqs'"):
        generated_block(doc, "config:sqs")
