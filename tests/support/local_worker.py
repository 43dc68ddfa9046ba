"""A separate process that publishes to or consumes from a local queue file, for the tests
that need real concurrency and real crashes (SIGKILL).

Usage:
    python -m tests.support.local_worker publish PATH QUEUE PREFIX COUNT
    python -m tests.support.local_worker consume PATH QUEUE [--ack-delay S]

``consume`` prints ``ready``, then each message id after acking it, flushing every line, and
stops after two idle seconds.
"""

from __future__ import annotations

import asyncio
import sys

import conductor_events.local.plugin
from conductor_events.backend import SubscribeOptions
from conductor_events.config import load_configuration
from conductor_events.event_queues import EventQueues
from conductor_events.logging import configure_logging
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost


def open_queues(path: str) -> EventQueues:
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(conductor_events.local.plugin, "local")
    env = {
        "CONDUCTOR_EVENTQUEUES_LOCAL_PATH": path,
        "CONDUCTOR_EVENTQUEUES_LOCAL_POLLINTERVAL": "10ms",
        "CONDUCTOR_EVENTQUEUES_LOCAL_VISIBILITYTIMEOUT": "60s",
    }
    config = load_configuration([], host, env)
    config.raise_for_errors()
    return EventQueues(config, host)


async def publish(path: str, queue: str, prefix: str, count: int) -> None:
    async with open_queues(path) as queues:
        for n in range(count):
            message = Message({"n": n, "by": prefix}, id=f"{prefix}-{n}")
            result = await queues.publish(f"local:{queue}", [message])
            assert result.ok, result.failure_summary()


async def consume(path: str, queue: str, ack_delay: float) -> None:
    async with open_queues(path) as queues:
        options = SubscribeOptions(prefetch=10, max_in_flight=10, drain_timeout=1)
        async with await queues.subscribe(f"local:{queue}", options) as subscription:
            print("ready", flush=True)
            while (delivery := await subscription.receive(timeout=2)) is not None:
                if ack_delay:
                    await asyncio.sleep(ack_delay)
                await delivery.ack()
                print(delivery.message.id, flush=True)


def main(argv: list[str]) -> None:
    configure_logging("warning", "json")  # an entry point: logs to stderr, stdout stays data
    command, path, queue, *rest = argv
    if command == "publish":
        asyncio.run(publish(path, queue, rest[0], int(rest[1])))
    else:
        delay = float(rest[1]) if rest[:1] == ["--ack-delay"] else 0.0
        asyncio.run(consume(path, queue, delay))


if __name__ == "__main__":
    main(sys.argv[1:])
