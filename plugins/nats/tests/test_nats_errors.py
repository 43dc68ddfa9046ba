"""Bad input ends in one clear line naming what is wrong and where, within a bounded time, with
no secret in it: an unreachable server, refused credentials, a malformed location, a subject
no stream stores while auto-creation is off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from conductor_events_nats.core import NatsQueueClient
from conductor_events_nats.jetstream import JetStreamQueueClient
from conductor_events_nats.testing import NatsServer

from conductor_events.backend import SubscribeOptions
from conductor_events.errors import MalformedSinkError, QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost
from conductor_events.testing.servers import free_port

GUARD = 30.0
"""A hang fails the test instead of blocking the run (not a timing assertion)."""

PASSWORD = "s3cret-pw-4711"


@pytest.fixture
def guarded_server(make_server: Callable[..., NatsServer]) -> NatsServer:
    return make_server("--user", "alice", "--pass", PASSWORD)


@pytest.mark.parametrize("queue_type", ["nats", "jsm"])
async def test_an_unreachable_server_fails_with_the_server_and_the_reason(
    make_jsm: Callable[..., JetStreamQueueClient],
    make_nats: Callable[..., NatsQueueClient],
    queue_type: str,
) -> None:
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    make = make_jsm if queue_type == "jsm" else make_nats
    client = make(url, connect_timeout="1s")
    async with asyncio.timeout(GUARD):
        with pytest.raises(QueueError) as caught:
            await client.publish("orders", [Message({"n": 1})])
    message = str(caught.value)
    assert message.startswith(f"{queue_type}: cannot connect to NATS at {url} within 1s: ")
    assert "\n" not in message


@pytest.mark.parametrize("queue_type", ["nats", "jsm"])
async def test_refused_credentials_name_the_reason_and_never_the_secret(
    make_jsm: Callable[..., JetStreamQueueClient],
    make_nats: Callable[..., NatsQueueClient],
    guarded_server: NatsServer,
    queue_type: str,
) -> None:
    make = make_jsm if queue_type == "jsm" else make_nats
    wrong = make(guarded_server.url, username="alice", password="wrong-" + PASSWORD)
    in_url = make(f"nats://alice:hunter2-{PASSWORD}@127.0.0.1:{guarded_server.port}")
    for client in (wrong, in_url):
        async with asyncio.timeout(GUARD):
            with pytest.raises(QueueError) as caught:
                await client.subscribe("orders", SubscribeOptions())
        message = str(caught.value)
        assert "authorization violation" in message.lower()
        assert f"127.0.0.1:{guarded_server.port}" in message
        assert PASSWORD not in message
        assert "hunter2" not in message
    right = make(guarded_server.url, username="alice", password=PASSWORD)
    subscription = await right.subscribe("orders", SubscribeOptions())
    await subscription.close()


@pytest.mark.parametrize(
    ("sink", "why"),
    [
        ("jsm:", "the subject after 'jsm:' is empty"),
        ("jsm:orders..new", "invalid NATS subject 'orders..new'"),
        ("jsm:orders.*", "no wildcards"),
        ("nats:orders >", "invalid NATS subject"),
        ("jsm:orders:bad.group", "invalid consumer name 'bad.group'"),
        ("nats:orders:a b", "invalid queue group 'a b'"),
        ("jsm:orders?durable=false", "jsm locations take no '?' parameters"),
        ("nats:orders:workers?x=1&y", "nats locations take no '?' parameters"),
    ],
)
async def test_a_malformed_location_is_refused_before_any_io(
    plugins: PluginHost, tmp_path: Path, sink: str, why: str
) -> None:
    path = tmp_path / "app.properties"
    unreachable = f"nats://127.0.0.1:{free_port()}"
    path.write_text(
        "conductor.event-queues.jsm.enabled=true\n"
        f"conductor.event-queues.jsm.url={unreachable}\n"
        "conductor.event-queues.nats.enabled=true\n"
        f"conductor.event-queues.nats.url={unreachable}\n",
        encoding="utf-8",
    )
    async with EventQueues.from_files([path], plugins=plugins, environ={}) as queues:
        with pytest.raises(MalformedSinkError) as caught:
            queues.resolve(sink)
    assert why in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_a_subject_without_a_stream_is_an_error_when_auto_creation_is_off(
    make_jsm: Callable[..., JetStreamQueueClient], subject: str
) -> None:
    client = make_jsm(auto_create_streams=False)
    expected = (
        rf"jsm: no stream stores subject '{subject}' and "
        r"conductor.event-queues.jsm.auto-create-streams is false"
    )
    with pytest.raises(QueueError, match=expected):
        await client.publish(subject, [Message({"n": 1})])
    with pytest.raises(QueueError, match=expected):
        await client.subscribe(subject, SubscribeOptions())
