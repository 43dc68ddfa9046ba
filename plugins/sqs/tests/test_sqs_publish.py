"""Publishing: batching, attributes, FIFO, size limits and per-message failures, read back with
plain boto3 from a real SQS API."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from conductor_events_sqs.wire import MAX_PAYLOAD_BYTES, META

from conductor_events.backend import SubscribeOptions
from conductor_events.errors import QueueError
from conductor_events.messages import Message

ReceiveAll = Callable[..., list[Any]]

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueueClient
    from mypy_boto3_sqs.client import SQSClient

OPTIONS = SubscribeOptions(drain_timeout=0.5)


def payload_of_size(size: int) -> str:
    """A JSON string payload whose encoding is exactly ``size`` bytes."""
    return "x" * (size - 2)


async def test_publish_is_what_a_plain_consumer_reads(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    message = Message(
        payload={"orderId": 7, "note": "café ☕"},
        headers={"trace-id": "abc", "tenant.name": "Zoë"},
    )
    result = await client.publish(qname, [message])
    assert result.ok
    assert result.published == [message.id]
    (got,) = receive_all(qname, 1)
    assert json.loads(got["Body"]) == {"orderId": 7, "note": "café ☕"}
    attributes = got["MessageAttributes"]
    assert attributes["trace-id"] == {"StringValue": "abc", "DataType": "String"}
    assert attributes["tenant.name"]["StringValue"] == "Zoë"
    assert json.loads(attributes[META]["StringValue"]) == {"id": message.id}


async def test_a_list_is_sent_in_batches_of_ten(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    await client.queue(qname)
    before = client.requests.by_operation["send_message_batch"]
    messages = [Message({"n": n}) for n in range(25)]
    result = await client.publish(qname, messages)
    assert sorted(result.published) == sorted(m.id for m in messages)
    assert client.requests.by_operation["send_message_batch"] - before == 3
    got = receive_all(qname, 25)
    assert sorted(json.loads(m["Body"])["n"] for m in got) == list(range(25))


async def test_concurrent_single_publishes_are_batched(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    """N EVENT-style single-message publishes cost at least 5x fewer requests than N."""
    await client.queue(qname)
    before = client.requests.by_operation["send_message_batch"]
    messages = [Message({"n": n}) for n in range(60)]
    results = await asyncio.gather(*(client.publish(qname, [m]) for m in messages))
    assert all(r.ok for r in results)
    requests = client.requests.by_operation["send_message_batch"] - before
    assert requests * 5 <= len(messages), requests
    assert len(receive_all(qname, 60)) == 60


async def test_headers_sqs_cannot_carry_as_attributes_still_round_trip(
    client: SqsQueueClient, qname: str
) -> None:
    headers = {f"h{i}": f"v{i}" for i in range(12)}  # more than SQS's 10 attributes
    headers |= {"bad name!": "x", "AWS.reserved": "y", "empty": "", "nonchar": "a\uffffb"}
    published = Message({"k": 1}, headers=headers, key="customer-1")
    assert (await client.publish(qname, [published])).ok
    async with await client.subscribe(qname, OPTIONS) as subscription:
        delivery = await subscription.receive(timeout=10)
        assert delivery is not None
        assert delivery.message.id == published.id
        assert dict(delivery.message.headers) == headers
        assert delivery.message.key == "customer-1"
        await delivery.ack()


async def test_bodies_with_characters_sqs_refuses_are_escaped_not_lost(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    payload = {"text": "a\uffffb\ud800c", "emoji": "\U0001f600"}
    assert (await client.publish(qname, [Message(payload)])).ok
    (got,) = receive_all(qname, 1)
    assert json.loads(got["Body"]) == payload


async def test_fifo_key_is_the_group_and_id_the_deduplication_id(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    name = f"{qname}.fifo"
    first = Message({"n": 1}, key="order-1")
    again = Message({"n": 1, "retry": True}, id=first.id, key="order-1")
    keyless = Message({"n": 2})
    long_id = Message({"n": 3}, id="x" * 200, key="order-2")
    for message in (first, again, keyless, long_id):
        assert (await client.publish(name, [message])).ok
    url = raw.get_queue_url(QueueName=name)["QueueUrl"]
    assert (
        raw.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])["Attributes"][
            "FifoQueue"
        ]
        == "true"
    )
    got = receive_all(name, 3, rounds=6)
    by_n = {json.loads(m["Body"])["n"]: m for m in got}
    assert sorted(by_n) == [1, 2, 3]  # the second publish of `first` was deduplicated
    assert "retry" not in json.loads(by_n[1]["Body"])
    assert by_n[1]["Attributes"]["MessageGroupId"] == "order-1"
    assert by_n[1]["Attributes"]["MessageDeduplicationId"] == first.id
    assert by_n[2]["Attributes"]["MessageGroupId"] == "default"  # documented default
    assert (
        by_n[3]["Attributes"]["MessageDeduplicationId"]
        == hashlib.sha256(("x" * 200).encode()).hexdigest()
    )


async def test_fifo_default_group_is_configurable(
    make_client: Callable[..., SqsQueueClient], qname: str, receive_all: ReceiveAll
) -> None:
    client = make_client(fifo_message_group_id="events")
    name = f"{qname}.fifo"
    assert (await client.publish(name, [Message({"n": 1})])).ok
    (got,) = receive_all(name, 1)
    assert got["Attributes"]["MessageGroupId"] == "events"


async def test_fifo_key_that_cannot_be_a_group_id_fails_that_message(
    client: SqsQueueClient, qname: str
) -> None:
    good, bad = Message({"n": 1}, key="ok"), Message({"n": 2}, key="has space")
    result = await client.publish(f"{qname}.fifo", [good, bad])
    assert result.published == [good.id]
    assert [f.message_id for f in result.failed] == [bad.id]
    assert "MessageGroupId" in result.failed[0].reason


async def test_message_over_the_limit_is_refused_before_sending(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    await client.queue(qname)
    before = client.requests.total
    too_big = Message(payload_of_size(MAX_PAYLOAD_BYTES + 1))
    result = await client.publish(qname, [too_big])
    assert [f.message_id for f in result.failed] == [too_big.id]
    assert "over the SQS limit" in result.failed[0].reason
    assert str(MAX_PAYLOAD_BYTES) in result.failed[0].reason
    assert client.requests.total == before  # nothing was sent


async def test_message_at_the_limit_is_accepted(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    assert client.max_message_size == MAX_PAYLOAD_BYTES
    await client.queue(qname)
    biggest = Message(payload_of_size(MAX_PAYLOAD_BYTES), headers={"a": "b"})
    small = [Message({"n": n, "pad": "p" * 2000}) for n in range(3)]
    result = await client.publish(qname, [biggest, *small])
    assert result.ok
    # four entries, but over 256 KiB together: SQS's request limit splits them in two calls
    assert client.requests.by_operation["send_message_batch"] == 2
    got = receive_all(qname, 4)
    assert sorted(len(m["Body"]) for m in got)[-1] == MAX_PAYLOAD_BYTES


async def test_a_refused_entry_fails_alone_and_the_rest_are_sent(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    """SQS rejects a whole batch for one bad entry; the plugin finds which one."""
    raw.create_queue(QueueName=qname, Attributes={"MaximumMessageSize": "1024"})
    messages = [Message({"n": n}) for n in range(4)]
    messages.insert(2, Message({"blob": "y" * 2000}))
    result = await client.publish(qname, messages)
    assert [f.message_id for f in result.failed] == [messages[2].id]
    assert "1024" in result.failed[0].reason
    assert sorted(result.published) == sorted(m.id for i, m in enumerate(messages) if i != 2)
    assert len(receive_all(qname, 4)) == 4


async def test_a_payload_that_is_not_json_fails_that_message(
    client: SqsQueueClient, qname: str
) -> None:
    good, bad = Message({"n": 1}), Message({"when": object()})
    result = await client.publish(qname, [good, bad])
    assert result.published == [good.id]
    assert result.failed[0].message_id == bad.id
    assert "not JSON" in result.failed[0].reason


async def test_publish_to_a_deleted_queue_raises_naming_it(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    await client.publish(qname, [Message(1)])
    raw.delete_queue(QueueUrl=raw.get_queue_url(QueueName=qname)["QueueUrl"])
    with pytest.raises(QueueError, match=qname):
        await client.publish(qname, [Message(2), Message(3)])
