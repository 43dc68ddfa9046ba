"""docs/sqs.md documents every ``conductor.event-queues.sqs.*`` key, as the code defines it."""

from __future__ import annotations

import re
from pathlib import Path

from conductor_events_sqs.settings import SqsSettings

from conductor_events.config.binding import known_keys
from conductor_events.testing.plugin_checks import assert_key_table_current, generated_block

DOC = Path(__file__).resolve().parents[3] / "docs" / "sqs.md"


def block() -> str:
    return generated_block(DOC, "config:sqs")


def test_every_key_is_documented_with_its_default() -> None:
    body = block()
    documented = re.findall(
        r"^\| `(conductor\.event-queues\.sqs\.[a-z0-9.-]+)` \| `([^`]*)`", body, re.M
    )
    keys = [f"{SqsSettings.section}.{suffix}" for suffix, _ in known_keys(SqsSettings)]
    assert [key for key, _ in documented] == keys
    defaults = dict(documented)
    assert defaults[f"{SqsSettings.section}.batch-size"] == "1"
    assert defaults[f"{SqsSettings.section}.poll-time-duration"] == "100ms"


def test_the_key_table_is_current() -> None:
    assert_key_table_current(DOC, "sqs", SqsSettings)
