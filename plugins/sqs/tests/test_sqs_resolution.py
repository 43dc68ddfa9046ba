"""Locations: names, URLs and FIFO names; URLs resolved once, by exact name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from conductor_events_sqs.locations import QueueRef, dead_letter_location, parse_location

from conductor_events.backend import SubscribeOptions
from conductor_events.errors import MalformedSinkError, QueueError
from conductor_events.messages import Message

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueueClient
    from mypy_boto3_sqs.client import SQSClient

OPTIONS = SubscribeOptions(drain_timeout=0.5)

ReceiveAll = Callable[..., list[Any]]


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("orders", QueueRef("orders")),
        ("orders.fifo", QueueRef("orders.fifo")),
        ("a-b_c", QueueRef("a-b_c")),
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
            QueueRef("orders", "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"),
        ),
        (
            "http://localhost:4566/000000000000/jobs.fifo",
            QueueRef("jobs.fifo", "http://localhost:4566/000000000000/jobs.fifo"),
        ),
    ],
)
def test_locations_that_parse(location: str, expected: QueueRef) -> None:
    assert parse_location(location) == expected


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "empty"),
        ("has space", "invalid SQS queue name"),
        ("a" * 81, "1 to 80"),
        (".fifo", "invalid SQS queue name"),
        ("orders.fifo.fifo", "invalid SQS queue name"),
        ("ftp://host/1/q", "invalid SQS queue URL"),
        ("https://sqs.amazonaws.com/q", "invalid SQS queue URL"),
        ("https://sqs.amazonaws.com/1/q?x=1", "remove"),
    ],
)
def test_locations_that_do_not(location: str, message: str) -> None:
    with pytest.raises(MalformedSinkError, match=message):
        parse_location(location)


def test_dead_letter_locations_follow_the_pattern_and_the_queue_type() -> None:
    assert dead_letter_location("{queue}_dlq", QueueRef("orders")) == "orders_dlq"
    assert dead_letter_location("{queue}_dlq", QueueRef("orders.fifo")) == "orders_dlq.fifo"
    assert dead_letter_location("all-dead", QueueRef("orders")) == "all-dead"


async def test_queue_url_is_resolved_once(client: SqsQueueClient, qname: str) -> None:
    await asyncio.gather(*(client.publish(qname, [Message(n)]) for n in range(5)))
    await client.publish(qname, [Message("later")])
    async with await client.subscribe(qname, OPTIONS):
        pass
    assert client.requests.by_operation["get_queue_url"] == 1


async def test_resolution_is_by_exact_name_not_by_prefix(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    """Conductor's ListQueues(prefix) + contains() could pick `<name>_archive` for `<name>`."""
    raw.create_queue(QueueName=f"{qname}_archive")
    raw.create_queue(QueueName=qname)
    listed = raw.list_queues(QueueNamePrefix=qname)["QueueUrls"]
    assert listed[0].endswith(f"{qname}_archive")  # what a first-match lookup would take
    await client.publish(qname, [Message("for the real queue")])
    assert [json.loads(m["Body"]) for m in receive_all(qname, 1)] == ["for the real queue"]
    assert receive_all(f"{qname}_archive", 1, rounds=1) == []


async def test_a_queue_url_is_used_as_given(
    client: SqsQueueClient, raw: SQSClient, qname: str, receive_all: ReceiveAll
) -> None:
    url = raw.create_queue(QueueName=qname)["QueueUrl"]
    assert client.parse_location(url) == url
    assert (await client.publish(url, [Message("by url")])).ok
    assert client.requests.by_operation["get_queue_url"] == 0
    assert [json.loads(m["Body"]) for m in receive_all(qname, 1)] == ["by url"]


async def test_missing_queue_without_create_queues_names_queue_and_region(
    make_client: Callable[..., SqsQueueClient], raw: SQSClient, qname: str
) -> None:
    client = make_client(create_queues=False)
    with pytest.raises(QueueError) as error:
        await client.publish(qname, [Message(1)])
    text = str(error.value)
    assert f"SQS queue '{qname}' does not exist" in text
    assert "region us-east-1" in text
    assert "conductor.event-queues.sqs.create-queues=true" in text
    assert "\n" not in text
    with pytest.raises(raw.exceptions.QueueDoesNotExist):
        raw.get_queue_url(QueueName=qname)  # and nothing was created


async def test_create_queues_creates_standard_and_fifo_queues(
    client: SqsQueueClient, raw: SQSClient, qname: str
) -> None:
    await client.publish(qname, [Message(1)])
    await client.publish(f"{qname}.fifo", [Message(1)])
    fifo_url = raw.get_queue_url(QueueName=f"{qname}.fifo")["QueueUrl"]
    attributes = raw.get_queue_attributes(QueueUrl=fifo_url, AttributeNames=["FifoQueue"])
    assert attributes["Attributes"]["FifoQueue"] == "true"
    assert raw.get_queue_url(QueueName=qname)["QueueUrl"].endswith(f"/{qname}")
