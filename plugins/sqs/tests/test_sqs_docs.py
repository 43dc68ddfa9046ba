"""docs/sqs.md documents every ``conductor.event-queues.sqs.*`` key, as the code defines it."""

from __future__ import annotations

import re
from pathlib import Path

from conductor_events_sqs.settings import SqsSettings

from conductor_events.config.binding import known_keys
from conductor_events.config.reference import reference_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "sqs.md"
BLOCK = re.compile(
    r"<!-- BEGIN GENERATED: config:sqs -->\n(?P<body>.*?)<!-- END GENERATED -->", re.DOTALL
)


def generated_block() -> str:
    match = BLOCK.search(DOC.read_text(encoding="utf-8"))
    assert match is not None, f"{DOC} has no generated config:sqs block"
    return match.group("body")


def test_every_key_is_documented_with_its_default() -> None:
    body = generated_block()
    documented = re.findall(
        r"^\| `(conductor\.event-queues\.sqs\.[a-z0-9.-]+)` \| `([^`]*)`", body, re.M
    )
    keys = [f"{SqsSettings.section}.{suffix}" for suffix, _ in known_keys(SqsSettings)]
    assert [key for key, _ in documented] == keys
    defaults = dict(documented)
    assert defaults[f"{SqsSettings.section}.batch-size"] == "1"
    assert defaults[f"{SqsSettings.section}.poll-time-duration"] == "100ms"


def test_the_key_table_is_current() -> None:
    """Regenerate with ``python -m tests.support.docs_sync docs/sqs.md`` after a settings
    change (or paste ``reference_table(SqsSettings)``)."""
    assert generated_block() == reference_table(SqsSettings) + "\n"
