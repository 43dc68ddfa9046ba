"""docs/amqp.md documents every key of the section and every location parameter, as the code
defines them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conductor_events_amqp.locations import PARAMETERS
from conductor_events_amqp.settings import SECTION, AmqpSettings

from conductor_events.config.binding import known_keys
from conductor_events.testing.plugin_checks import assert_key_table_current, generated_block

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "amqp.md"
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("queue_type", ["amqp_queue", "amqp_exchange"])
def test_the_key_table_is_current(queue_type: str) -> None:
    """Both types bind Conductor's one section, so both are documented by its one table."""
    assert_key_table_current(DOC, queue_type, AmqpSettings)
    body = generated_block(DOC, "config:amqp")
    documented = re.findall(r"^\| `(conductor\.event-queues\.[a-z0-9_.-]+)`", body, re.M)
    assert documented == [f"{SECTION}.{suffix}" for suffix, _ in known_keys(AmqpSettings)]


def test_every_location_parameter_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Locations", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    for parameter in PARAMETERS:
        assert any(f"`{parameter}`" in line.split(" | ")[0] for line in table), parameter


def test_readme_points_to_the_docs() -> None:
    assert "docs/amqp.md" in README.read_text(encoding="utf-8")
