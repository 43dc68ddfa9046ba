"""Bad brokers and credentials: one clear line each, within a bounded time, no secret shown."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conductor_events_amqp.client import AmqpQueueClient
from rabbit import Broker, unique

from conductor_events.backend import SubscribeOptions
from conductor_events.errors import QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost

GUARD = 60  # a hang fails here instead of blocking the suite
SECRET = "s3cr3t-Value-Do-Not-Show"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


async def test_an_unreachable_broker_is_one_clear_line(
    make_client: Callable[..., AmqpQueueClient], closed_port: int
) -> None:
    client = make_client(hosts=f"127.0.0.1:{closed_port}", password=SECRET)
    with pytest.raises(QueueError) as error:
        await asyncio.wait_for(client.publish("orders", [Message(1)]), GUARD)
    text = str(error.value)
    assert text.startswith("amqp_queue: cannot connect to RabbitMQ within 10s")
    assert "(conductor.event-queues.amqp.hosts)" in text
    assert f"127.0.0.1:{closed_port}" in text
    assert "\n" not in text
    assert SECRET not in text


async def test_a_broker_that_never_answers_times_out(
    make_client: Callable[..., AmqpQueueClient], silent_port: int
) -> None:
    client = make_client(hosts=f"127.0.0.1:{silent_port}", connection_timeout_in_milli_secs=1000)
    with pytest.raises(QueueError) as error:
        await asyncio.wait_for(client.subscribe("orders", SubscribeOptions()), GUARD)
    text = str(error.value)
    assert text.startswith("amqp_queue: cannot connect to RabbitMQ within 1s")
    assert f"127.0.0.1:{silent_port}: timed out" in text


async def test_the_next_host_is_tried(
    make_client: Callable[..., AmqpQueueClient], closed_port: int, rabbitmq: Broker
) -> None:
    client = make_client(hosts=f"127.0.0.1:{closed_port},{rabbitmq.host}:{rabbitmq.port}")
    queue = unique("hosts")
    result = await client.publish(queue, [Message(1)])
    assert result.ok


async def test_wrong_credentials_name_the_user_never_the_password(
    make_client: Callable[..., AmqpQueueClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(username="nobody", password=SECRET)
    with pytest.raises(QueueError) as error:
        await asyncio.wait_for(client.publish("orders", [Message(1)]), GUARD)
    text = str(error.value)
    assert "refused user 'nobody' on virtual host '/'" in text
    assert "wrong username or password" in text
    assert "conductor.event-queues.amqp.username" in text
    assert SECRET not in text
    assert SECRET not in repr(error.value.__cause__)
    assert SECRET not in caplog.text


async def test_event_task_fails_with_the_reason_and_no_secret(
    plugins: PluginHost,
    rabbitmq: Broker,
    properties_file: Callable[[dict[str, str]], Path],
) -> None:
    prefix = "conductor.event-queues.amqp"
    path = properties_file(
        {
            **rabbitmq.properties(),
            f"{prefix}.enabled": "true",
            f"{prefix}.password": SECRET,
        }
    )
    async with EventQueues.from_files([path], plugins=plugins, environ={}) as queues:
        result = await asyncio.wait_for(
            execute_event_task(EventTask(sink="amqp_queue:orders", input_parameters={}), queues),
            GUARD,
        )
    assert result.status is TaskStatus.FAILED
    reason = result.reason_for_incompletion
    assert reason is not None
    assert "refused user 'guest'" in reason
    assert SECRET not in reason
