"""Visibility renewal on the real ``local`` queue: a message in hand is not delivered to another
consumer while it is held, comes back once it is dropped, and a failed extension is logged
and retried, never raised."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from conductor_events.backend import Delivery, SubscribeOptions
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost
from conductor_events_handlers.renewal import VisibilityRenewer
from tests.serve.conftest import eventually

EVENT = "local:renewal"
VISIBILITY = 2.0
INTERVAL = 0.5


@pytest.fixture
async def short_visibility(tmp_path: Path, host: PluginHost) -> AsyncIterator[EventQueues]:
    path = tmp_path / "app.properties"
    path.write_text(
        f"conductor.event-queues.local.path={tmp_path / 'queue.db'}\n"
        f"conductor.event-queues.local.visibility-timeout={VISIBILITY}s\n"
        "conductor.event-queues.local.poll-interval=20ms\n"
        "conductor.event-queues.local.busy-timeout=100ms\n"
    )
    async with EventQueues.from_files([path], plugins=host, environ={}) as queues:
        yield queues


async def received(queues: EventQueues) -> Delivery:
    await queues.publish(EVENT, [Message({"n": 1}, id="m-1")])
    subscription = await queues.subscribe(EVENT, SubscribeOptions(prefetch=1, drain_timeout=0))
    delivery = await subscription.receive(timeout=5)
    assert delivery is not None
    return delivery


async def test_a_held_message_stays_invisible_until_it_is_dropped(
    short_visibility: EventQueues,
) -> None:
    delivery = await received(short_visibility)
    renewer = VisibilityRenewer(INTERVAL)
    renewer.hold(delivery)
    other = await short_visibility.subscribe(EVENT, SubscribeOptions(prefetch=1))
    # Well past the queue's visibility timeout: without the extensions it would be here.
    assert await other.receive(timeout=3 * VISIBILITY) is None
    assert renewer.counts["extended"] >= 2
    renewer.drop(delivery)
    again = await other.receive(timeout=10 * VISIBILITY)
    assert again is not None
    assert (again.message.id, again.attempt) == ("m-1", 2)
    await again.ack()
    await other.close()


async def test_a_failed_extension_is_logged_and_tried_again(
    short_visibility: EventQueues, tmp_path: Path
) -> None:
    delivery = await received(short_visibility)
    renewer = VisibilityRenewer(INTERVAL)
    # Another process holds the queue file's write lock: extending fails after busy-timeout.
    blocker = sqlite3.connect(tmp_path / "queue.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with capture_logs() as logs:
        renewer.hold(delivery)
        await eventually(lambda: renewer.counts["failed"] >= 1, what="a failed extension")
        blocker.execute("ROLLBACK")
        blocker.close()
        await eventually(lambda: renewer.counts["extended"] >= 1, what="an extension")
    failed = [line for line in logs if line["event"] == "handlers.message.extend_failed"]
    assert failed
    assert failed[0]["message_id"] == "m-1"
    assert failed[0]["log_level"] == "warning"
    renewer.drop(delivery)
    await delivery.ack()


async def test_a_settled_message_is_not_extended(short_visibility: EventQueues) -> None:
    delivery = await received(short_visibility)
    renewer = VisibilityRenewer(INTERVAL)
    renewer.hold(delivery)
    await delivery.ack()
    with capture_logs() as logs:
        await eventually(lambda: renewer.held == 0, 10, "the renewer to let it go")
    assert renewer.counts == {}
    assert not [line for line in logs if line["log_level"] in ("warning", "error")]
