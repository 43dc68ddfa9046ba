"""The plugin's publish and consume against the Service Bus test broker, through the real SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from servicebus_broker import ServiceBusBroker
from structlog.testing import capture_logs

from conductor_events.backend import Delivery, SubscribeOptions, Subscription
from conductor_events.errors import MalformedSinkError, PublishError, QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message

if TYPE_CHECKING:
    from conductor_events_azure.client import AzureQueueClient


async def receive_n(
    subscription: Subscription, count: int, timeout: float = 10.0
) -> list[Delivery]:
    got: list[Delivery] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            delivery = await subscription.receive(timeout=timeout)
            if delivery is not None:
                got.append(delivery)
    return got


async def test_publish_keeps_id_headers_and_key(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    message = Message(
        {"orderId": 7, "note": "café ☕"}, headers={"trace-id": "abc"}, key="customer-1"
    )
    result = await client.publish(queue_name, [message])
    assert result.ok
    assert result.published == [message.id]
    (stored,) = broker.peek(queue_name)
    assert stored["message_id"] == message.id
    assert stored["properties"] == {"trace-id": "abc"}
    assert stored["annotations"]["x-opt-partition-key"] == "customer-1"
    assert stored["group_id"] is None


async def test_key_is_the_session_id_on_session_entities(
    make_client: Callable[..., AzureQueueClient],
    broker: ServiceBusBroker,
    make_queue: Callable[..., str],
) -> None:
    name = make_queue(requires_session=True)
    client = make_client(session_entities=name)
    assert (await client.publish(name, [Message({"a": 1}, key="customer-9")])).ok
    (stored,) = broker.peek(name)
    assert stored["group_id"] == "customer-9"


async def test_round_trip_through_a_subscription(client: AzureQueueClient, queue_name: str) -> None:
    sent = [Message({"n": n}, headers={"h": str(n)}, key="k") for n in range(3)]
    assert (await client.publish(queue_name, sent)).ok
    async with await client.subscribe(queue_name, SubscribeOptions()) as subscription:
        got = await receive_n(subscription, 3)
        for delivery in got:
            await delivery.ack()
    assert sorted(d.message.payload["n"] for d in got) == [0, 1, 2]
    by_id = {d.message.id: d for d in got}
    for message in sent:
        received = by_id[message.id].message
        assert received.headers == message.headers
        assert received.key == "k"
        assert by_id[message.id].attempt == 1


async def test_batches_fill_to_the_broker_limit(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    # ~40 KiB each: the 256 KiB limit fits six per batch, so 20 messages take 4 transfers.
    messages = [Message({"n": n, "pad": "x" * 40_000}) for n in range(20)]
    result = await client.publish(queue_name, messages)
    assert result.ok, result.failure_summary()
    assert sorted(result.published) == sorted(m.id for m in messages)
    assert broker.depth(queue_name) == 20


async def test_too_large_message_fails_alone(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    small = [Message({"n": 1}), Message({"n": 2})]
    big = Message({"pad": "x" * 300_000})
    result = await client.publish(queue_name, [small[0], big, small[1]])
    assert sorted(result.published) == sorted(m.id for m in small)
    (failure,) = result.failed
    assert failure.message_id == big.id
    assert "nothing was sent" in failure.reason
    assert broker.depth(queue_name) == 2


async def test_single_too_large_message_is_refused(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    big = Message({"pad": "x" * 300_000})
    result = await client.publish(queue_name, [big])
    assert [f.message_id for f in result.failed] == [big.id]
    assert "too large" in result.failed[0].reason or "does not fit" in result.failed[0].reason
    assert broker.depth(queue_name) == 0


async def test_payload_that_is_not_json_fails_that_message(
    client: AzureQueueClient, queue_name: str
) -> None:
    good = Message({"ok": True})
    bad = Message({"when": object()})
    result = await client.publish(queue_name, [good, bad])
    assert result.published == [good.id]
    assert result.failed[0].message_id == bad.id
    assert "not JSON" in result.failed[0].reason


async def test_body_that_is_not_json_is_delivered_as_text(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.aio import ServiceBusClient

    async with (
        ServiceBusClient.from_connection_string(broker.connection_string()) as raw,
        raw.get_queue_sender(queue_name, keep_alive=None) as sender,
    ):
        await sender.send_messages(ServiceBusMessage("not json {", message_id="plain-1"))
    async with await client.subscribe(queue_name, SubscribeOptions()) as subscription:
        (delivery,) = await receive_n(subscription, 1)
        await delivery.ack()
    assert delivery.message.payload == "not json {"
    assert delivery.message.id == "plain-1"


async def test_nack_redelivers_with_the_next_attempt(
    client: AzureQueueClient, queue_name: str
) -> None:
    await client.publish(queue_name, [Message({"a": 1})])
    async with await client.subscribe(queue_name, SubscribeOptions()) as subscription:
        (first,) = await receive_n(subscription, 1)
        await first.nack()
        (second,) = await receive_n(subscription, 1)
        assert second.message.id == first.message.id
        assert (first.attempt, second.attempt) == (1, 2)
        await second.ack()


async def test_nack_past_the_attempt_limit_dead_letters_with_the_reason(
    make_client: Callable[..., AzureQueueClient], broker: ServiceBusBroker, queue_name: str
) -> None:
    client = make_client(receive={"max_deliveries": 2, "max_wait_time": "200ms"})
    message = Message({"a": 1})
    await client.publish(queue_name, [message])
    async with await client.subscribe(queue_name, SubscribeOptions()) as subscription:
        (first,) = await receive_n(subscription, 1)
        await first.nack(reason="handler failed: boom")
        (second,) = await receive_n(subscription, 1)
        await second.nack(reason="handler failed: boom again")
    assert broker.depth(queue_name) == 0
    async with await client.subscribe(f"{queue_name}/$deadletterqueue", SubscribeOptions()) as dead:
        (dead_letter,) = await receive_n(dead, 1)
        await dead_letter.ack()
    assert dead_letter.message.id == message.id
    assert dead_letter.dead_letter_reason == "MaxAttemptsExceeded: handler failed: boom again"
    # The reason lives in dead_letter_reason, not in the headers.
    assert "DeadLetterReason" not in dead_letter.message.headers


async def test_explicit_dead_letter_keeps_reason(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    await client.publish(queue_name, [Message({"a": 1})])
    async with await client.subscribe(queue_name, SubscribeOptions()) as subscription:
        (delivery,) = await receive_n(subscription, 1)
        await delivery.dead_letter("invalid order")
    (stored,) = broker.peek(f"{queue_name}/$DeadLetterQueue")
    assert stored["properties"]["DeadLetterReason"] == "invalid order"


async def test_extend_keeps_the_lock_past_its_duration(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    await client.publish(queue_name, [Message({"a": 1})])
    async with await client.subscribe(queue_name, SubscribeOptions()) as subscription:
        (delivery,) = await receive_n(subscription, 1)
        await delivery.extend(6)
        await asyncio.sleep(3.5)  # past the 2 s lock: only renewals keep it
        assert await subscription.receive(timeout=0.3) is None
        await delivery.ack()
    assert broker.depth(queue_name) == 0


async def test_lost_lock_is_logged_and_the_message_redelivered(
    make_client: Callable[..., AzureQueueClient], broker: ServiceBusBroker, queue_name: str
) -> None:
    client = make_client(receive={"max_lock_renewal_duration": "0", "max_wait_time": "200ms"})
    await client.publish(queue_name, [Message({"a": 1})])
    async with await client.subscribe(queue_name, SubscribeOptions()) as subscription:
        (delivery,) = await receive_n(subscription, 1)
        await asyncio.sleep(2.5)  # the 2 s lock expires while the handler works
        with capture_logs() as logs:
            await delivery.ack()
        assert any(entry["event"] == "azure.delivery.lock_lost" for entry in logs), logs
        (again,) = await receive_n(subscription, 1)
        assert again.message.id == delivery.message.id
        assert again.attempt == 2
        await again.ack()
    assert broker.depth(queue_name) == 0


async def test_topic_subscriptions_each_receive(
    client: AzureQueueClient, broker: ServiceBusBroker
) -> None:
    broker.create_topic("orders-topic")
    broker.create_subscription("orders-topic", "billing")
    broker.create_subscription("orders-topic", "shipping")
    message = Message({"order": 1})
    assert (await client.publish("orders-topic", [message])).ok
    for location, options in (
        ("orders-topic/subscriptions/billing", SubscribeOptions()),
        ("orders-topic", SubscribeOptions(group="shipping")),
    ):
        async with await client.subscribe(location, options) as subscription:
            (delivery,) = await receive_n(subscription, 1)
            await delivery.ack()
            assert delivery.message.id == message.id


async def test_close_returns_prefetched_and_unsettled_messages(
    client: AzureQueueClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    await client.publish(queue_name, [Message({"n": n}) for n in range(5)])
    subscription = await client.subscribe(
        queue_name, SubscribeOptions(prefetch=5, drain_timeout=0.2)
    )
    (held,) = await receive_n(subscription, 1)
    await subscription.close()
    assert held.settled
    async with await client.subscribe(queue_name, SubscribeOptions()) as again:
        got = await receive_n(again, 5)
        for delivery in got:
            await delivery.ack()
    assert broker.depth(queue_name) == 0


async def test_wrong_key_is_an_authentication_error(
    make_client: Callable[..., AzureQueueClient], broker: ServiceBusBroker, queue_name: str
) -> None:
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5"
    client = make_client(connection_string=broker.connection_string(key=wrong), retry={"total": 3})
    failures = broker.auth_failures
    with pytest.raises(PublishError) as raised:
        await client.publish(queue_name, [Message({"a": 1})])
    text = str(raised.value)
    assert "refused the credentials" in text
    assert wrong not in text
    assert broker.auth_failures - failures == 1  # no retry storm
    with pytest.raises(QueueError, match="refused the credentials"):
        await client.subscribe(queue_name, SubscribeOptions())


async def test_entity_that_does_not_exist(client: AzureQueueClient) -> None:
    with pytest.raises(PublishError, match="does not exist"):
        await client.publish("no-such-queue", [Message({"a": 1})])
    with pytest.raises(QueueError, match="does not exist"):
        await client.subscribe("no-such-queue", SubscribeOptions())


async def test_publishing_to_a_subscription_is_refused(client: AzureQueueClient) -> None:
    with pytest.raises(MalformedSinkError, match="read-only"):
        await client.publish("t/subscriptions/s", [Message({"a": 1})])


async def test_event_task_fails_with_the_reason_when_the_service_refuses(
    queues: EventQueues, broker: ServiceBusBroker, queue_name: str
) -> None:
    too_large = EventTask(sink=f"azure:{queue_name}", input_parameters={"pad": "x" * 300_000})
    result = await execute_event_task(too_large, queues)
    assert result.status is TaskStatus.FAILED
    assert result.reason_for_incompletion is not None
    assert "too large" in result.reason_for_incompletion
    missing = EventTask(sink="azure:no-such-entity", input_parameters={"a": 1})
    result = await execute_event_task(missing, queues)
    assert result.status is TaskStatus.FAILED
    assert "does not exist" in (result.reason_for_incompletion or "")
    ok = EventTask(sink=f"azure:{queue_name}", input_parameters={"a": 1})
    assert (await execute_event_task(ok, queues)).status is TaskStatus.COMPLETED
    (stored,) = broker.peek(queue_name)
    assert stored["message_id"] == ok.task_id
