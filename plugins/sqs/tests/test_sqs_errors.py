"""Bad endpoints and credentials: one clear line each, and no hang (bounded timeouts)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conductor_events.errors import QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueueClient

GUARD = 60  # a hang would fail here instead of blocking the suite


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_wrong_endpoint_is_a_clear_error(
    make_client: Callable[..., SqsQueueClient], closed_port: int
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    client = make_client(endpoint=endpoint, max_attempts=2)
    with pytest.raises(QueueError) as error:
        await asyncio.wait_for(client.publish("orders", [Message(1)]), GUARD)
    text = str(error.value)
    assert text.startswith(f"cannot connect to the SQS endpoint {endpoint}")
    assert "conductor.event-queues.sqs.endpoint" in text
    assert "\n" not in text


async def test_an_endpoint_that_never_answers_times_out(
    make_client: Callable[..., SqsQueueClient], silent_endpoint: str
) -> None:
    client = make_client(endpoint=silent_endpoint, read_timeout="1s", max_attempts=1)
    with pytest.raises(QueueError) as error:
        await asyncio.wait_for(client.publish("orders", [Message(1)]), GUARD)
    text = str(error.value)
    assert f"the SQS endpoint {silent_endpoint} did not answer" in text
    assert "within 1s" in text
    assert "conductor.event-queues.sqs.read-timeout" in text


async def test_no_credentials_is_a_clear_error(
    make_client: Callable[..., SqsQueueClient],
) -> None:
    client = make_client(access_key_id=None, secret_access_key=None)
    with pytest.raises(QueueError) as error:
        await asyncio.wait_for(client.publish("orders", [Message(1)]), GUARD)
    text = str(error.value)
    assert text.startswith("no usable AWS credentials for SQS (region us-east-1")
    assert "AWS_PROFILE" in text


async def test_an_unknown_profile_is_named(make_client: Callable[..., SqsQueueClient]) -> None:
    client = make_client(access_key_id=None, secret_access_key=None, profile="nightly-batch")
    with pytest.raises(QueueError, match=r"AWS profile 'nightly-batch' is not in the AWS config"):
        await client.publish("orders", [Message(1)])


async def test_a_secret_never_appears_in_an_error(
    make_client: Callable[..., SqsQueueClient], closed_port: int
) -> None:
    client = make_client(
        endpoint=f"http://127.0.0.1:{closed_port}",
        secret_access_key="s3cr3t-Value-Do-Not-Show",
        max_attempts=1,
    )
    with pytest.raises(QueueError) as error:
        await client.publish("orders", [Message(1)])
    assert "s3cr3t" not in str(error.value)
    assert "s3cr3t" not in repr(client.settings)


async def test_event_task_fails_with_the_reason_when_sqs_is_unreachable(
    plugins: PluginHost, tmp_path: Path, closed_port: int
) -> None:
    config = tmp_path / "app.properties"
    config.write_text(
        "conductor.event-queues.sqs.enabled=true\n"
        f"conductor.event-queues.sqs.endpoint=http://127.0.0.1:{closed_port}\n"
        "conductor.event-queues.sqs.region=eu-west-1\n"
        "conductor.event-queues.sqs.access-key-id=testing\n"
        "conductor.event-queues.sqs.secret-access-key=testing\n"
        "conductor.event-queues.sqs.max-attempts=1\n",
        encoding="utf-8",
    )
    async with EventQueues.from_files([config], plugins=plugins, environ={}) as queues:
        result = await asyncio.wait_for(
            execute_event_task(EventTask(sink="sqs:orders", input_parameters={"a": 1}), queues),
            GUARD,
        )
    assert result.status is TaskStatus.FAILED
    assert result.reason_for_incompletion is not None
    assert "cannot connect to the SQS endpoint" in result.reason_for_incompletion
    assert "region eu-west-1" in result.reason_for_incompletion
