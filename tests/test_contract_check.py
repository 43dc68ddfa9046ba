"""Every backend in this repository keeps to the documented extension hooks of the core's
classes (the check third-party backends can run too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor_events.testing.contract_check import core_internals_used

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = {
    "local": ROOT / "core/src/conductor_events/local",
    "sqs": ROOT / "plugins/sqs/src",
    "kafka": ROOT / "plugins/kafka/src",
    "azure": ROOT / "plugins/azure/src",
    "amqp": ROOT / "plugins/amqp/src",
    "nats": ROOT / "plugins/nats/src",
    "memory (the example plugin)": ROOT / "tests/example-plugin/src",
}


@pytest.mark.parametrize("source", BACKENDS.values(), ids=list(BACKENDS))
def test_backends_touch_no_internals_of_core_classes(source: Path) -> None:
    assert core_internals_used([source]) == []


def test_the_check_names_each_use_of_the_core_s_internals(tmp_path: Path) -> None:
    backend = tmp_path / "backend.py"
    backend.write_text(
        "from conductor_events import backend\n"
        "class Sub(backend.Subscription):\n"
        "    async def _fetch(self, n, timeout):\n"
        "        self._buffer.clear()\n"
        "        return []\n"
        "    def _on_settled(self, deliveries):\n"
        "        super()._on_settled(deliveries)\n"
        "        self._discard_buffered(lambda handle: False)\n"
        "class Other:\n"
        "    def __init__(self):\n"
        "        self._buffer = []  # its own attribute, not a Subscription's\n"
        "def settle(delivery, subscription):\n"
        "    delivery._state = None\n"
        "    return subscription._in_flight\n"
    )
    assert core_internals_used([tmp_path]) == [
        f"{backend}:4: uses Subscription._buffer on self",
        f"{backend}:13: uses the core's _state of another object",
        f"{backend}:14: uses the core's _in_flight of another object",
    ]
