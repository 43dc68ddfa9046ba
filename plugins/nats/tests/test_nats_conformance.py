"""The conformance kit against both NATS types, in full mode, on real servers.

``jsm`` (JetStream) makes every promise the kit checks except replay and exactly-once: a
subscription without a group is Conductor's shared durable consumer (``durable-name``), which
does not read the stream again, and delivery is at least once. The broker-restart scenario runs
in its own class, on a ``nats-server`` the test starts and restarts on the same port and store;
the other scenarios run on the shared server.

``nats`` (core NATS) is at most once, so the kit skips, each with its reason in the report:

* everything about persistence (``publisher_close``, ``continue_after_subscribe_close``): the
  server keeps no message for a subscription that is not open, so the kit subscribes first;
* ``replay``: nothing is stored to read again;
* ``dead_letter_*``: there is no dead-letter destination;
* ``visibility_extension``: nothing is redelivered on a timeout (a message stays with its
  subscription until settled);
* ``reconnect``: a message published while the server restarts is lost, by design;
* ``message_ctx`` and ``graceful_drain``: they check that what a closing subscription held
  reaches a subscription opened after the publish. Without a queue group (as the kit
  subscribes) every subscription had its own copy, so a closing one drops what it holds
  instead of sending every other subscriber another copy; a queue-group member hands it back
  to its group, which tests/test_nats_core.py checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from conductor_events_nats import plugin as nats_plugin
from conductor_events_nats.jetstream import JetStreamQueueClient
from conductor_events_nats.settings import stream_name_for
from conductor_events_nats.testing import NatsServer

from conductor_events.testing import (
    Capabilities,
    DeadLetterSupport,
    Harness,
    QueueConformance,
    RawPublisher,
)

VISIBILITY_TIMEOUT = 2.0
MAX_DELIVER = 3


def dead_letters_of(location: str) -> str:
    return f"{location}.dlq"


async def plain_connection(harness: Harness, queue_type: str) -> Any:
    import nats

    return await nats.connect(harness.properties[f"conductor.event-queues.{queue_type}.url"])


async def publish_with_nats_py(harness: Harness, location: str, bodies: Sequence[bytes]) -> None:
    """A foreign core NATS producer: plain nats-py, no headers."""
    client = await plain_connection(harness, "nats")
    try:
        for body in bodies:
            await client.publish(location, body)
        await client.flush()
    finally:
        await client.close()


async def publish_with_jetstream(harness: Harness, location: str, bodies: Sequence[bytes]) -> None:
    """A foreign JetStream producer: plain nats-py, no headers, each publish acknowledged."""
    plugin_client = harness.client
    assert isinstance(plugin_client, JetStreamQueueClient)
    await plugin_client.stream_for(location)  # the stream the plugin would create
    client = await plain_connection(harness, "jsm")
    try:
        context = client.jetstream()
        for body in bodies:
            await context.publish(location, body)
    finally:
        await client.close()


def jetstream_properties(url: str) -> dict[str, str]:
    prefix = "conductor.event-queues.jsm"
    return {
        f"{prefix}.url": url,
        f"{prefix}.ack-wait": f"{VISIBILITY_TIMEOUT:g}s",
        f"{prefix}.max-deliver": str(MAX_DELIVER),
        f"{prefix}.poll-time-duration": "50ms",
        f"{prefix}.max-ack-pending": "1000",
        f"{prefix}.stream-storage-type": "file",
    }


async def delete_streams(harness: Harness, location: str) -> None:
    """Delete the location's stream and its dead-letter stream (and so their consumers)."""
    from nats.js.errors import NotFoundError

    client = await plain_connection(harness, "jsm")
    try:
        manager = client.jsm()
        for name in (stream_name_for(location), stream_name_for(dead_letters_of(location))):
            with contextlib.suppress(NotFoundError):
                await manager.delete_stream(name)
    finally:
        await client.close()


class TestNatsConformance(QueueConformance):
    plugin = nats_plugin
    queue_type = "nats"
    capabilities = Capabilities(
        ordered=True,
        consumer_groups=True,
        raw_publisher=RawPublisher(publish_with_nats_py),
    )
    skip_scenarios = {
        name: (
            "core NATS, at most once: a subscription without a queue group drops what it "
            "holds when it closes (every other subscription had its own copy), so a later "
            "subscription never receives it; queue groups hand it back "
            "(tests/test_nats_core.py)"
        )
        for name in ("message_ctx", "graceful_drain")
    }

    @pytest.fixture
    def queue_properties(self, nats_url: str) -> dict[str, str]:
        return {"conductor.event-queues.nats.url": nats_url}


JETSTREAM = Capabilities(
    persistent=True,
    ordered=True,
    consumer_groups=True,
    dead_letter=DeadLetterSupport(location=dead_letters_of, max_deliveries=MAX_DELIVER),
    visibility_timeout=VISIBILITY_TIMEOUT,
    raw_publisher=RawPublisher(publish_with_jetstream),
)


class TestJetStreamConformance(QueueConformance):
    plugin = nats_plugin
    queue_type = "jsm"
    capabilities = JETSTREAM
    skip_scenarios = {
        "reconnect": "run by TestJetStreamRestartConformance on a server the test restarts",
    }

    @pytest.fixture
    def queue_properties(self, nats_url: str) -> dict[str, str]:
        return jetstream_properties(nats_url)

    async def delete_location(self, harness: Harness, location: str) -> None:
        await delete_streams(harness, location)


async def restart_broker(harness: Harness) -> None:
    suite = harness.suite
    assert isinstance(suite, TestJetStreamRestartConformance)
    await asyncio.to_thread(suite.server.restart)


class TestJetStreamRestartConformance(QueueConformance):
    """Only the reconnect scenario (conftest.py deselects the others here): the server is
    stopped by its PID and started again on the same port and store, twice, mid-stream."""

    plugin = nats_plugin
    queue_type = "jsm"
    capabilities = Capabilities(
        persistent=True,
        ordered=True,
        consumer_groups=True,
        visibility_timeout=VISIBILITY_TIMEOUT,
        restart_broker=restart_broker,
    )
    server: NatsServer

    @pytest.fixture
    def queue_properties(self, restartable_server: NatsServer) -> dict[str, str]:
        self.server = restartable_server
        properties = jetstream_properties(restartable_server.url)
        properties["conductor.event-queues.jsm.reconnect-wait"] = "200ms"
        return properties

    async def make_location(self, harness: Harness, hint: str) -> str:
        return f"restart-{hint}-{uuid.uuid4().hex[:10]}"

    async def delete_location(self, harness: Harness, location: str) -> None:
        await delete_streams(harness, location)
