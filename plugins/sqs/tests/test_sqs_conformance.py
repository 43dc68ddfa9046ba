"""The conformance kit against the SQS plugin on a real SQS API (moto's server), short mode.

Two classes: standard queues (competing consumers, at-least-once, no order) and FIFO queues
(per-key order, a group blocked while its message is in flight), each with the capabilities
SQS really has. What is skipped, and why, shows in the test report:

* consumer groups, replay: SQS queues have neither (one queue, competing consumers);
* exactly-once: SQS delivers at least once (FIFO deduplicates publishes, not deliveries);
* reconnect: moto keeps its state in memory, so restarting it loses every queue;
* ordering (standard queues only): a standard queue does not keep order;
* lease expiry: a message whose visibility timeout keeps running out is moved by the redrive
  policy (after twice max-receive-count receives, as the capabilities declare), and SQS marks it
  with ``DeadLetterQueueSourceArn``, which the plugin turns into the dead-letter reason; moto
  omits that attribute, so here the moved message has no reason. Redelivery after an expired
  timeout, with the next attempt, is checked by test_sqs_consume.py.

Foreign bodies are sent with plain boto3; an SQS body is Unicode text, so the kit sends none
that is not UTF-8.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import conductor_events_sqs.plugin
import pytest
from conductor_events_sqs.client import REDRIVE_FACTOR, SqsQueueClient

from conductor_events.testing import (
    Capabilities,
    DeadLetterSupport,
    Harness,
    QueueConformance,
    RawPublisher,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

VISIBILITY_TIMEOUT = 2.0
MAX_RECEIVE_COUNT = 3


def _dead_letters_of(location: str) -> str:
    if location.endswith(".fifo"):
        return f"{location.removesuffix('.fifo')}_dlq.fifo"
    return f"{location}_dlq"


DEAD_LETTERS = DeadLetterSupport(
    location=_dead_letters_of,
    max_deliveries=MAX_RECEIVE_COUNT,
    # A message whose visibility timeout keeps running out is moved by the queue's redrive
    # policy, which the plugin sets at REDRIVE_FACTOR times max-receive-count (SQS counts the
    # receives a closing subscriber gives back too); its nack past the limit moves it sooner.
    expired_deliveries=REDRIVE_FACTOR * MAX_RECEIVE_COUNT,
)


async def send_with_boto3(harness: Harness, location: str, bodies: Sequence[bytes]) -> None:
    """A foreign producer: plain boto3, no message attributes (so no conductor-events id)."""
    suite = harness.suite
    assert isinstance(suite, SqsConformance)
    client = harness.client
    assert isinstance(client, SqsQueueClient)
    url = (await client.queue(location)).url  # created as the plugin creates it, with its DLQ
    raw = suite.raw_client

    def send(text: str) -> None:
        if location.endswith(".fifo"):
            raw.send_message(
                QueueUrl=url,
                MessageBody=text,
                MessageGroupId="foreign",
                MessageDeduplicationId=uuid.uuid4().hex,
            )
        else:
            raw.send_message(QueueUrl=url, MessageBody=text)

    for body in bodies:
        await asyncio.to_thread(send, body.decode())


RAW = RawPublisher(send_with_boto3, binary=False)


class SqsConformance(QueueConformance):
    """Shared set-up: moto's endpoint, short timeouts, and queue clean-up."""

    plugin = conductor_events_sqs.plugin
    queue_type = "sqs"
    short = True  # moto is slow and CPU-bound; ``--conformance-full`` runs the full counts
    raw_client: SQSClient

    @pytest.fixture
    def queue_properties(self, moto_endpoint: str, raw: SQSClient) -> dict[str, str]:
        self.raw_client = raw
        prefix = "conductor.event-queues.sqs"
        return {
            f"{prefix}.endpoint": moto_endpoint,
            f"{prefix}.region": "us-east-1",
            f"{prefix}.access-key-id": "testing",
            f"{prefix}.secret-access-key": "testing",
            f"{prefix}.batch-size": "10",
            f"{prefix}.wait-time": "1s",
            f"{prefix}.poll-time-duration": "20ms",
            f"{prefix}.visibility-timeout": f"{VISIBILITY_TIMEOUT:g}s",
            f"{prefix}.max-in-flight": "100",
            f"{prefix}.dead-letter-queue": "{queue}_dlq",
            f"{prefix}.max-receive-count": str(MAX_RECEIVE_COUNT),
        }

    async def delete_location(self, harness: Harness, location: str) -> None:
        """Delete the queue and its dead-letter queue: moto scans queues per request."""
        for name in (location, _dead_letters_of(location)):
            try:
                url = await asyncio.to_thread(self.raw_client.get_queue_url, QueueName=name)
            except self.raw_client.exceptions.QueueDoesNotExist:
                continue
            await asyncio.to_thread(self.raw_client.delete_queue, QueueUrl=url["QueueUrl"])


MOTO_NO_SOURCE_ARN = (
    "moto omits DeadLetterQueueSourceArn on a message its redrive policy moved, so the "
    "dead-lettered message carries no reason here (real SQS sets it)"
)


class TestSqsStandardConformance(SqsConformance):
    skip_scenarios = {"lease_expiry": MOTO_NO_SOURCE_ARN}
    capabilities = Capabilities(
        persistent=True,
        dead_letter=DEAD_LETTERS,
        visibility_timeout=VISIBILITY_TIMEOUT,
        raw_publisher=RAW,
    )


SERIAL = (
    "a throughput scenario, run by TestSqsStandardConformance: here its keyless messages share "
    "one FIFO group, which SQS serves one batch at a time, so it would only run slower"
)


class TestSqsFifoConformance(SqsConformance):
    skip_scenarios = {
        "multiple_topics": SERIAL,
        "publisher_close": SERIAL,
        "publish_subscribe": SERIAL,
        "resend_on_error": SERIAL,
        "concurrent_subscribe": SERIAL,
        "continue_after_subscribe_close": SERIAL,
        "lease_expiry": MOTO_NO_SOURCE_ARN,
        "visibility_extension": (
            "the control message shares the extended message's FIFO group, and SQS delivers "
            "nothing of a group while one of its messages is in flight; run by "
            "TestSqsStandardConformance"
        ),
    }
    capabilities = Capabilities(
        persistent=True,
        ordered=True,
        dead_letter=DEAD_LETTERS,
        visibility_timeout=VISIBILITY_TIMEOUT,
        raw_publisher=RAW,
    )

    async def make_location(self, harness: Harness, hint: str) -> str:
        return f"ce-{hint}-{uuid.uuid4().hex[:10]}.fifo"
