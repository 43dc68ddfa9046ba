"""Publishing to tansu: confirmed per message, failures per message with the reason, the EVENT
task FAILED when the broker did not confirm, and bad input answered clearly and in time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from conductor_events_kafka.client import KafkaQueueClient
from conductor_events_kafka.testing import TANSU_CONSUMER, TANSU_PRODUCER, Tansu
from conductor_events_kafka.testing import unique_name as unique

from conductor_events.backend import SubscribeOptions
from conductor_events.errors import MalformedSinkError, QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost

MakeClient = Callable[..., KafkaQueueClient]

GUARD = 60.0  # a hang fails here instead of blocking the suite


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_properties(tmp_path: Path, bootstrap: str, *extra: str) -> Path:
    prefix = "conductor.event-queues.kafka"
    lines = [
        f"{prefix}.enabled=true",
        f"{prefix}.bootstrap-servers={bootstrap}",
        *(f"{prefix}.producer.{k}={v}" for k, v in TANSU_PRODUCER.items()),
        *(f"{prefix}.consumer.{k}={v}" for k, v in TANSU_CONSUMER.items()),
        *extra,
    ]
    path = tmp_path / "app.properties"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_batch_with_linger_reports_each_failure(make_client: MakeClient) -> None:
    """Batched by linger.ms; the message the producer refuses fails alone, with its reason."""
    client = make_client(max_message_size=4_000_000, producer={**TANSU_PRODUCER, "linger.ms": "5"})
    topic = unique()
    good = [Message(payload={"n": n}, key=f"k{n % 3}") for n in range(50)]
    too_large = Message(payload="x" * 2_000_000)  # over the producer's max.request.size
    not_json = Message(payload={"set": {1, 2}})
    result = await client.publish(topic, [*good[:25], too_large, not_json, *good[25:]])
    assert set(result.published) == {m.id for m in good}
    failed = {f.message_id: f.reason for f in result.failed}
    assert set(failed) == {too_large.id, not_json.id}
    assert "MessageSizeTooLarge" in failed[too_large.id]
    assert "not JSON" in failed[not_json.id]


async def test_over_the_size_limit_fails_that_message_only(make_client: MakeClient) -> None:
    client = make_client(max_message_size=1000)
    topic = unique()
    ok, big = Message(payload="a" * 100), Message(payload="b" * 1000)
    result = await client.publish(topic, [ok, big])
    assert result.published == [ok.id]
    (failure,) = result.failed
    assert failure.message_id == big.id
    assert "max-message-size" in failure.reason


async def test_event_task_completes_when_confirmed_and_fails_with_the_reason(
    tansu: Tansu, plugins: PluginHost, tmp_path: Path
) -> None:
    path = write_properties(
        tmp_path, tansu.bootstrap, "conductor.event-queues.kafka.max-message-size=2000"
    )
    topic = unique()
    async with EventQueues.from_files([path], plugins=plugins, environ={}) as queues:
        done = await execute_event_task(
            EventTask(sink=f"kafka:{topic}", input_parameters={"a": 1}), queues
        )
        assert done.status is TaskStatus.COMPLETED, done.reason_for_incompletion
        assert done.output_data["event_produced"] == f"kafka:{topic}"
        refused = await execute_event_task(
            EventTask(sink=f"kafka:{topic}", input_parameters={"blob": "x" * 5000}), queues
        )
        assert refused.status is TaskStatus.FAILED
        assert "max-message-size" in (refused.reason_for_incompletion or "")
        subscription = await queues.subscribe(f"kafka:{topic}", SubscribeOptions(group="g"))
        async with subscription:
            delivery = await subscription.receive(timeout=15)
            assert delivery is not None
            assert delivery.message.id == done.task_id, "message id = task id"
            assert delivery.message.payload["a"] == 1
            await delivery.ack()
            assert await subscription.receive(timeout=0.5) is None, "the refused one was written"


async def test_unreachable_bootstrap_servers_fail_fast_and_clearly(
    make_client: MakeClient, closed_port: int, plugins: PluginHost, tmp_path: Path
) -> None:
    client = make_client(bootstrap_servers=f"127.0.0.1:{closed_port}", connect_timeout="3s")
    async with asyncio.timeout(GUARD):
        with pytest.raises(QueueError, match=f"127.0.0.1:{closed_port}"):
            await client.publish("orders", [Message(payload=1)])
        with pytest.raises(QueueError, match="cannot subscribe"):
            await client.subscribe("orders", SubscribeOptions(group="g"))
    path = write_properties(
        tmp_path,
        f"127.0.0.1:{closed_port}",
        "conductor.event-queues.kafka.connect-timeout=3s",
    )
    async with EventQueues.from_files([path], plugins=plugins, environ={}) as queues:
        async with asyncio.timeout(GUARD):
            result = await execute_event_task(EventTask(sink="kafka:orders"), queues)
    assert result.status is TaskStatus.FAILED
    assert "cannot start the producer" in (result.reason_for_incompletion or "")


async def test_blackholed_bootstrap_is_bounded_by_connect_timeout(make_client: MakeClient) -> None:
    """An address that never answers (a listening socket that never accepts Kafka) fails
    within connect-timeout instead of hanging."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        client = make_client(bootstrap_servers=f"127.0.0.1:{port}", connect_timeout="1s")
        async with asyncio.timeout(GUARD):
            with pytest.raises(QueueError, match="within 1s"):
                await client.publish("orders", [Message(payload=1)])


async def test_missing_topic_with_auto_create_off(make_client: MakeClient) -> None:
    client = make_client(create_topics=False)
    missing = unique("missing")
    with pytest.raises(QueueError, match=r"does not exist and .*create-topics is false"):
        await client.publish(missing, [Message(payload=1)])
    with pytest.raises(QueueError, match="does not exist"):
        await client.subscribe(missing, SubscribeOptions(group="g"))
    # An existing topic is fine.
    existing = unique()
    creator = make_client()
    assert (await creator.publish(existing, [Message(payload=1)])).ok
    assert (await client.publish(existing, [Message(payload=2)])).ok


def test_invalid_topic_names_are_refused_before_any_io(make_client: MakeClient) -> None:
    client = make_client()
    for bad in ("", "has space", "a/b", "..", "x" * 250, "?group=g"):
        with pytest.raises(MalformedSinkError, match="topic"):
            client.parse_location(bad)
    for bad in ("t?grp=x", "t?group", "t?group=", "t?group=a b"):
        with pytest.raises(MalformedSinkError, match="group"):
            client.parse_location(bad)
    assert client.parse_location("orders.v1_a-b") == "orders.v1_a-b"
