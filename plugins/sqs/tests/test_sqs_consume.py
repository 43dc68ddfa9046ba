"""Consuming: long polling, in-flight limits, ack/nack/extend, graceful stop, foreign messages."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from conductor_events.backend import Delivery, DeliveryState, SubscribeOptions
from conductor_events.errors import QueueError
from conductor_events.messages import Message

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueueClient
    from mypy_boto3_sqs.client import SQSClient

OPTIONS = SubscribeOptions(drain_timeout=0.5)


def counts(raw: SQSClient, name: str) -> tuple[int, int]:
    """(visible, in flight) as SQS reports them."""
    url = raw.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = raw.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def raw_receive(raw: SQSClient, name: str, *, wait: int = 1) -> list[str]:
    """Bodies a plain consumer can receive right now (left on the queue, invisible 30 s)."""
    url = raw.get_queue_url(QueueName=name)["QueueUrl"]
    response = raw.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, VisibilityTimeout=30
    )
    return [m["Body"] for m in response.get("Messages", [])]


async def test_receive_then_ack_deletes_in_one_batch_call(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    sent = [Message({"n": n}, headers={"h": str(n)}) for n in range(5)]
    await client.publish(qname, sent)
    async with await client.subscribe(qname, OPTIONS) as subscription:
        deliveries = [await subscription.receive(timeout=10) for _ in sent]
        before = client.requests.by_operation["delete_message_batch"]
        received = [d for d in deliveries if d is not None]
        assert sorted(d.message.id for d in received) == sorted(m.id for m in sent)
        for delivery in received:
            assert delivery.attempt == 1
            assert delivery.message.headers == {"h": str(delivery.message.payload["n"])}
        await asyncio.gather(*(d.ack() for d in received))
        assert client.requests.by_operation["delete_message_batch"] - before == 1
    assert counts(raw, qname) == (0, 0)


async def test_a_message_from_a_plain_producer_is_delivered_even_if_not_json(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    url = raw.create_queue(QueueName=qname)["QueueUrl"]
    sent = raw.send_message(
        QueueUrl=url,
        MessageBody="plain text, not {json",
        MessageAttributes={
            "source": {"DataType": "String", "StringValue": "legacy"},
            "count": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    async with await client.subscribe(qname, OPTIONS) as subscription:
        delivery = await subscription.receive(timeout=10)
        assert delivery is not None
        assert delivery.message.payload == "plain text, not {json"
        assert delivery.message.id == sent["MessageId"]
        assert delivery.message.headers == {
            "source": "legacy",
            "count": "3",
            "blob": base64.b64encode(b"\x00\x01").decode(),
        }
        assert delivery.message.created_at > time.time() - 600
        await delivery.ack()


async def test_nack_redelivers_after_the_delay_with_the_next_attempt(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    message = Message({"job": 1})
    await client.publish(qname, [message])
    async with await client.subscribe(qname, OPTIONS) as subscription:
        first = await subscription.receive(timeout=10)
        assert first is not None
        assert first.attempt == 1
        await first.nack(delay=3)
        assert counts(raw, qname) == (0, 1)  # invisible for the delay, not dropped
        second = await subscription.receive(timeout=15)
        assert second is not None
        assert second.message.id == message.id
        assert second.attempt == 2  # SQS's ApproximateReceiveCount
        await second.nack(delay=0)
        third = await subscription.receive(timeout=10)
        assert third is not None
        assert third.attempt == 3
        await third.ack()


async def test_extend_keeps_a_message_invisible_past_the_visibility_timeout(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    client = make_client(visibility_timeout="1s", max_in_flight=2)  # no room to re-receive
    await client.publish(qname, [Message("kept"), Message("expires")])
    async with await client.subscribe(qname, OPTIONS) as subscription:
        got = [await subscription.receive(timeout=10) for _ in range(2)]
        by_payload = {d.message.payload: d for d in got if d is not None}
        await by_payload["kept"].extend(20)
        await asyncio.sleep(2.5)  # past the 1 s visibility timeout
        assert raw_receive(raw, qname) == ['"expires"']
        await by_payload["kept"].ack()  # its receipt handle is still valid
        assert counts(raw, qname) == (0, 1)  # only "expires" is left, held by raw


async def test_a_delivery_left_unsettled_comes_back_to_the_same_subscription(
    make_client: Callable[..., SqsQueueClient], qname: str
) -> None:
    """A handler that hangs past the visibility timeout holds up no receiver: with the
    read-ahead window full (prefetch 1) and emptied only by handing the delivery out, never
    by a settlement, the subscription still receives the message again, as attempt 2."""
    client = make_client(visibility_timeout="1s")
    message = Message("hangs")
    await client.publish(qname, [message])
    options = SubscribeOptions(prefetch=1, max_in_flight=5, drain_timeout=0)
    async with await client.subscribe(qname, options) as subscription:
        first = await subscription.receive(timeout=10)
        assert first is not None
        assert first.attempt == 1
        again = await subscription.receive(timeout=10)
        assert again is not None
        assert again.message.id == message.id
        assert again.attempt == 2
        await again.ack()


async def test_in_flight_is_bounded_by_max_in_flight(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    client = make_client(max_in_flight=3, batch_size=2)
    await client.publish(qname, [Message(n) for n in range(8)])
    subscription = await client.subscribe(
        qname, SubscribeOptions(max_in_flight=50, drain_timeout=0.2)
    )
    try:
        held = [await subscription.receive(timeout=10) for _ in range(3)]
        assert all(d is not None for d in held)
        assert await subscription.receive(timeout=1.5) is None
        assert counts(raw, qname) == (5, 3)  # nothing fetched beyond the limit
        first = held[0]
        assert first is not None
        await first.ack()
        assert await subscription.receive(timeout=10) is not None
    finally:
        await subscription.close()


async def test_close_returns_unsettled_messages_at_once(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    """Graceful stop: held and prefetched messages become visible again immediately, not
    after the 60 s visibility timeout."""
    await client.publish(qname, [Message(n) for n in range(6)])
    subscription = await client.subscribe(qname, SubscribeOptions(drain_timeout=0.2))
    held = [await subscription.receive(timeout=10) for _ in range(2)]
    assert all(d is not None for d in held)
    await subscription.close()
    assert sorted(raw_receive(raw, qname, wait=2) + raw_receive(raw, qname)) == [
        str(n) for n in range(6)
    ]


async def test_close_does_not_wait_for_a_long_poll(
    make_client: Callable[..., SqsQueueClient], qname: str
) -> None:
    client = make_client(wait_time="20s")
    subscription = await client.subscribe(qname, OPTIONS)
    assert await subscription.receive(timeout=0.5) is None  # a 20 s long poll is running
    await subscription.close()
    # close returned while the long poll is still out: it was abandoned, not waited for
    assert any(t.name == "conductor-events-sqs-receive" for t in threading.enumerate())


async def test_a_message_arriving_for_a_closed_subscription_is_released(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    """A long poll abandoned at close that then receives a message gives it back at once."""
    client = make_client(wait_time="3s")
    subscription = await client.subscribe(qname, OPTIONS)
    assert await subscription.receive(timeout=0.3) is None
    await subscription.close()
    await client.publish(qname, [Message("late")])
    await asyncio.sleep(4)  # the abandoned poll returns with the message and releases it
    assert raw_receive(raw, qname) == ['"late"']


async def test_idle_queue_is_long_polled_not_hammered(
    make_client: Callable[..., SqsQueueClient], qname: str
) -> None:
    long_polling = make_client(wait_time="2s")
    short_polling = make_client(wait_time="0s", poll_time_duration="20ms")
    for client in (long_polling, short_polling):
        async with await client.subscribe(qname, OPTIONS) as subscription:
            assert await subscription.receive(timeout=1.5) is None
    assert long_polling.requests.by_operation["receive_message"] <= 2
    assert short_polling.requests.by_operation["receive_message"] > 5


async def test_ack_many_deletes_a_batch_in_one_call(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    sent = [Message({"n": n}) for n in range(10)]
    await client.publish(qname, sent)
    options = SubscribeOptions(prefetch=10, max_in_flight=10, drain_timeout=0.5)
    async with await client.subscribe(qname, options) as subscription:
        received: list[Delivery] = []
        while len(received) < len(sent):
            batch = await subscription.receive_batch(10, timeout=10)
            assert batch, "the messages did not arrive"
            received += batch
        before = client.requests.by_operation["delete_message_batch"]
        await subscription.ack_many(received)
        assert client.requests.by_operation["delete_message_batch"] - before == 1
    assert sorted(d.message.id for d in received) == sorted(m.id for m in sent)
    assert counts(raw, qname) == (0, 0)


async def test_close_returns_held_messages_in_batch_calls(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    """Ten held messages go back with one ChangeMessageVisibilityBatch call, not ten."""
    await client.publish(qname, [Message(n) for n in range(10)])
    options = SubscribeOptions(prefetch=10, max_in_flight=10, drain_timeout=0)
    subscription = await client.subscribe(qname, options)
    held: list[Delivery] = []
    while len(held) < 10:
        batch = await subscription.receive_batch(10, timeout=10)
        assert batch, "the messages did not arrive"
        held += batch
    before = client.requests.by_operation["change_message_visibility_batch"]
    await subscription.close()
    assert client.requests.by_operation["change_message_visibility_batch"] - before == 1
    assert counts(raw, qname) == (10, 0)


async def test_ack_many_on_a_deleted_queue_fails_naming_each_and_keeps_them_pending(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    sent = [Message({"n": n}) for n in range(3)]
    await client.publish(qname, sent)
    options = SubscribeOptions(prefetch=10, drain_timeout=0)
    subscription = await client.subscribe(qname, options)
    received: list[Delivery] = []
    while len(received) < len(sent):
        batch = await subscription.receive_batch(10, timeout=10)
        assert batch, "the messages did not arrive"
        received += batch
    raw.delete_queue(QueueUrl=raw.get_queue_url(QueueName=qname)["QueueUrl"])
    with pytest.raises(QueueError) as caught:
        await subscription.ack_many(received)
    text = str(caught.value)
    assert text.startswith("ack of 3 of 3 messages failed, they stay pending: ")
    for message in sent:
        assert f"{message.id}: ack of message {message.id} on SQS queue {qname!r} failed" in text
    assert all(d.state is DeliveryState.PENDING for d in received)
    assert subscription.in_flight == 3
    await subscription.close()
