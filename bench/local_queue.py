"""Setting up the built-in ``local`` queue for a case, with nothing else loaded."""

from __future__ import annotations

from pathlib import Path

import conductor_events.local.plugin
from bench.framework import BenchError
from bench.payloads import json_payload
from conductor_events.config import load_configuration
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost

SINK = "local:bench"


def open_queues(workdir: Path, **environ: str) -> EventQueues:
    """EventQueues over a queue file in ``workdir``, with only the built-in plugin.

    ``environ`` adds Spring-form overrides (``CONDUCTOR_EVENTQUEUES_LOCAL_...``).
    """
    plugins = PluginHost(entry_points=[])
    plugins.add_plugin(conductor_events.local.plugin, "local")
    env = {"CONDUCTOR_EVENTQUEUES_LOCAL_PATH": str(workdir / "queue.db"), **environ}
    config = load_configuration([], plugins, env)
    config.raise_for_errors()
    return EventQueues(config, plugins)


async def prefill(
    queues: EventQueues, count: int, *, shape: str, sink: str = SINK, batch: int = 1000
) -> None:
    """Publish ``count`` 1 KiB messages in batches (untimed set-up for the consume cases)."""
    payload = json_payload(shape=shape)
    for start in range(0, count, batch):
        messages = [Message(payload) for _ in range(min(batch, count - start))]
        result = await queues.publish(sink, messages)
        if not result.ok:
            raise BenchError(f"prefill refused: {result.failure_summary()}")
