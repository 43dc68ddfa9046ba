"""The EVENT task: Conductor's payload and output, and a FAILED task for every failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.event_queues import EventQueues, ResolvedSink
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message, PublishFailure, PublishResult
from conductor_events.sinks import SinkAddress

SEED = EventTask(
    sink="local:send_email_queue",
    input_parameters={"myKey": "myValue", "myNumber": 100},
    workflow_instance_id="967b19ae-10d1-4b23-b0e7-ae324524dac0",
    workflow_type="my-workflow-name",
    workflow_version=1,
    task_id="a5f8c6e0-8b4d-4bd5-8d3e-0d7a1f6a9b11",
)


async def test_seed_example_output_is_conductors_plus_sink_fields(queues: EventQueues) -> None:
    result = await execute_event_task(SEED, queues)
    assert result.status is TaskStatus.COMPLETED
    assert result.reason_for_incompletion is None
    # Conductor's documented example output, plus sink, asyncComplete and event_produced.
    assert result.output_data == {
        "workflowInstanceId": "967b19ae-10d1-4b23-b0e7-ae324524dac0",
        "workflowType": "my-workflow-name",
        "workflowVersion": 1,
        "correlationId": None,
        "myKey": "myValue",
        "myNumber": 100,
        "sink": "local:send_email_queue",
        "asyncComplete": False,
        "event_produced": "local:send_email_queue",
    }
    assert result.as_dict()["taskId"] == SEED.task_id


async def test_published_message_is_the_payload_with_the_task_id(queues: EventQueues) -> None:
    await execute_event_task(SEED, queues)
    async with await queues.subscribe("local:send_email_queue") as subscription:
        delivery = await subscription.receive(timeout=5)
        assert delivery is not None
        assert delivery.message.id == SEED.task_id
        assert delivery.message.payload == SEED.payload()
        assert "event_produced" not in delivery.message.payload
        await delivery.ack()


def test_system_fields_overwrite_same_named_inputs() -> None:
    task = EventTask(
        sink="local:q",
        input_parameters={"workflowType": "spoofed", "sink": "kafka:other", "x": 1},
        workflow_type="real",
        correlation_id="c-1",
        task_to_domain={"task_a": "blue"},
        async_complete=True,
    )
    payload = task.payload()
    assert payload["workflowType"] == "real"
    assert payload["sink"] == "local:q"
    assert payload["asyncComplete"] is True
    assert payload["correlationId"] == "c-1"
    assert payload["taskToDomain"] == {"task_a": "blue"}
    assert payload["x"] == 1
    assert "taskToDomain" not in EventTask(sink="local:q").payload()


async def test_async_complete_leaves_the_task_in_progress(queues: EventQueues) -> None:
    task = EventTask(sink="local:q", async_complete=True)
    result = await execute_event_task(task, queues)
    assert result.status is TaskStatus.IN_PROGRESS
    assert result.output_data["asyncComplete"] is True


@pytest.mark.parametrize(
    ("sink", "reason"),
    [
        ("local:", "sink 'local:': the queue name after 'local:' is empty"),
        ("nowhere", "sink 'nowhere' has no queue type"),
        ("sqs:orders", "unknown queue type 'sqs'; install conductor-events-sqs"),
        ("conductorinvalidsink", "belongs to the Conductor server's internal queue"),
    ],
)
async def test_bad_sink_fails_the_task_with_the_reason(
    queues: EventQueues, sink: str, reason: str
) -> None:
    result = await execute_event_task(EventTask(sink=sink, input_parameters={"a": 1}), queues)
    assert result.status is TaskStatus.FAILED
    assert result.reason_for_incompletion is not None
    assert reason in result.reason_for_incompletion
    assert result.output_data["a"] == 1
    assert "event_produced" not in result.output_data


async def test_oversize_payload_fails_the_task_and_writes_nothing(queues: EventQueues) -> None:
    task = EventTask(sink="local:big", input_parameters={"blob": "x" * (1024 * 1024 + 1)})
    result = await execute_event_task(task, queues)
    assert result.status is TaskStatus.FAILED
    assert result.reason_for_incompletion is not None
    assert "exceeds the local queue limit of 1048576 bytes" in result.reason_for_incompletion
    client = queues.client("local")
    assert await client.depth("big") == 0  # type: ignore[attr-defined]


class RefusingClient(QueueClient):
    """A backend whose broker refuses every message, as a full SQS batch failure would."""

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        return PublishResult(failed=[PublishFailure(m.id, "ThrottlingException") for m in messages])

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        raise NotImplementedError


class ExplodingClient(RefusingClient):
    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        raise ConnectionResetError("connection reset by peer")


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (RefusingClient(), "publish to 'x:q' was not confirmed: ThrottlingException"),
        (
            ExplodingClient(),
            "publish to 'x:q' failed: ConnectionResetError: connection reset by peer",
        ),
    ],
)
async def test_unconfirmed_publish_fails_the_task(
    queues: EventQueues, client: QueueClient, reason: str
) -> None:
    queues._sinks["x:q"] = ResolvedSink(SinkAddress("x", "q"), client)
    result = await execute_event_task(EventTask(sink="x:q"), queues)
    assert result.status is TaskStatus.FAILED
    assert result.reason_for_incompletion == reason
    assert result.output_data["event_produced"] == "x:q"


async def test_non_json_input_fails_the_task(queues: EventQueues) -> None:
    task = EventTask(sink="local:q", input_parameters={"when": object()})
    result = await execute_event_task(task, queues)
    assert result.status is TaskStatus.FAILED
    reason: Any = result.reason_for_incompletion
    assert "payload is not JSON" in reason
