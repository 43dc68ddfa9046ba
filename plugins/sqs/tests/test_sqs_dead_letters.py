"""Dead-lettering: the plugin's own move (payload, attributes and reason kept) and SQS's native
redrive on the queues the plugin creates."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from conductor_events_sqs.wire import META

from conductor_events.backend import DeliveryState, SubscribeOptions
from conductor_events.errors import QueueError
from conductor_events.messages import Message

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueueClient
    from mypy_boto3_sqs.client import SQSClient

ReceiveAll = Callable[..., list[Any]]
OPTIONS = SubscribeOptions(drain_timeout=0.5)


def exists(raw: SQSClient, name: str) -> bool:
    try:
        raw.get_queue_url(QueueName=name)
    except raw.exceptions.QueueDoesNotExist:
        return False
    return True


async def test_nack_past_the_limit_moves_the_message_with_its_reason(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    raw.create_queue(QueueName=qname)  # an existing queue without a redrive policy
    client = make_client(dead_letter_queue="{queue}_dlq", max_receive_count=2)
    sent = Message({"order": 42}, headers={"tenant": "acme", "trace": "t-1"})
    await client.publish(qname, [sent])
    async with await client.subscribe(qname, OPTIONS) as subscription:
        first = await subscription.receive(timeout=10)
        assert first is not None
        await first.nack(reason="timeout calling the API")
        second = await subscription.receive(timeout=10)
        assert second is not None
        assert second.attempt == 2
        await second.nack(reason="HTTP 503 from the API")
        assert second.state is DeliveryState.NACKED
        assert await subscription.receive(timeout=1.5) is None  # not redelivered
    async with await client.subscribe(f"{qname}_dlq", OPTIONS) as dead:
        moved = await dead.receive(timeout=10)
        assert moved is not None
        assert moved.message.id == sent.id
        assert moved.message.payload == {"order": 42}
        assert moved.message.headers == {"tenant": "acme", "trace": "t-1"}
        assert moved.dead_letter_reason == "HTTP 503 from the API (delivery 2 of 2)"
        await moved.release()
    (on_the_wire,) = [
        json.loads(m["MessageAttributes"][META]["StringValue"])
        for m in raw.receive_message(
            QueueUrl=raw.get_queue_url(QueueName=f"{qname}_dlq")["QueueUrl"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        )["Messages"]
    ]
    assert on_the_wire["dead_letter_source"] == qname
    assert on_the_wire["attempts"] == 2
    assert not exists(raw, f"{qname}_dlq_dlq")  # a dead-letter queue gets none of its own


async def test_dead_letter_moves_at_once_with_the_given_reason(
    make_client: Callable[..., SqsQueueClient], qname: str
) -> None:
    client = make_client(dead_letter_queue="{queue}_dlq")
    await client.publish(qname, [Message("poison")])
    async with await client.subscribe(qname, OPTIONS) as subscription:
        delivery = await subscription.receive(timeout=10)
        assert delivery is not None
        assert delivery.attempt == 1
        await delivery.dead_letter("schema violation: no orderId")
    async with await client.subscribe(f"{qname}_dlq", OPTIONS) as dead:
        moved = await dead.receive(timeout=10)
        assert moved is not None
        assert moved.message.payload == "poison"
        assert moved.dead_letter_reason == "schema violation: no orderId"
        await moved.ack()
    assert await client.depth(qname) == 0


async def test_created_queues_get_a_native_redrive_policy(
    make_client: Callable[..., SqsQueueClient],
    raw: SQSClient,
    qname: str,
    receive_all: ReceiveAll,
) -> None:
    """A consumer that crashes never nacks: SQS's own redrive still moves the message."""
    client = make_client(dead_letter_queue="{queue}_dlq", max_receive_count=2)
    await client.publish(qname, [Message({"crash": True})])
    url = raw.get_queue_url(QueueName=qname)["QueueUrl"]
    dlq_url = raw.get_queue_url(QueueName=f"{qname}_dlq")["QueueUrl"]
    attributes = raw.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    dlq_arn = raw.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    assert policy["deadLetterTargetArn"] == dlq_arn["Attributes"]["QueueArn"]
    assert int(policy["maxReceiveCount"]) == 4  # twice max-receive-count: a backstop
    for _ in range(4):  # receives that are never settled (visibility 0: back at once)
        got = raw.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1)
        assert len(got.get("Messages", [])) == 1
    assert raw.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    (moved,) = receive_all(f"{qname}_dlq", 1)
    assert json.loads(moved["Body"]) == {"crash": True}


async def test_native_redrive_target_is_used_for_the_plugins_own_moves(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    """A queue whose owner set a redrive policy: its target and limit win over the settings."""
    target = raw.create_queue(QueueName=f"{qname}-owners-dlq")["QueueUrl"]
    arn = raw.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    raw.create_queue(
        QueueName=qname,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})
        },
    )
    client = make_client(dead_letter_queue="{queue}_dlq", max_receive_count=5)
    await client.publish(qname, [Message("x")])
    async with await client.subscribe(qname, OPTIONS) as subscription:
        delivery = await subscription.receive(timeout=10)
        assert delivery is not None
        await delivery.nack(reason="bad")  # attempt 1 of the queue's own limit of 1
    async with await client.subscribe(f"{qname}-owners-dlq", OPTIONS) as dead:
        moved = await dead.receive(timeout=10)
        assert moved is not None
        assert moved.dead_letter_reason == "bad (delivery 1 of 1)"
        await moved.ack()
    assert not exists(raw, f"{qname}_dlq")


async def test_fifo_dead_letters_go_to_a_fifo_queue_keeping_the_group(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    client = make_client(dead_letter_queue="{queue}_dlq", max_receive_count=1)
    await client.publish(f"{qname}.fifo", [Message({"n": 1}, key="customer-9")])
    async with await client.subscribe(f"{qname}.fifo", OPTIONS) as subscription:
        delivery = await subscription.receive(timeout=10)
        assert delivery is not None
        await delivery.nack(reason="nope")
    async with await client.subscribe(f"{qname}_dlq.fifo", OPTIONS) as dead:
        moved = await dead.receive(timeout=10)
        assert moved is not None
        assert moved.message.key == "customer-9"
        assert moved.dead_letter_reason == "nope (delivery 1 of 1)"
        await moved.ack()


async def test_without_a_dead_letter_queue_nothing_is_dropped(
    make_client: Callable[..., SqsQueueClient], qname: str
) -> None:
    client = make_client(max_receive_count=1)
    await client.publish(qname, [Message("keep me")])
    async with await client.subscribe(qname, OPTIONS) as subscription:
        first = await subscription.receive(timeout=10)
        assert first is not None
        await first.nack(reason="failed")  # past the limit, but nowhere to move it
        again = await subscription.receive(timeout=10)
        assert again is not None
        assert again.attempt == 2
        with pytest.raises(QueueError, match=r"no dead-letter queue.*dead-letter-queue"):
            await again.dead_letter("give up")
        assert again.state is DeliveryState.PENDING
        await again.release()
    assert await client.depth(qname) == 1
