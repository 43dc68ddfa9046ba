"""The seed's walk-through on SQS: an EVENT task publishes to ``sqs:conductor_doug_testing``,
configured by a properties file alone, and a plain boto3 consumer reads what it sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from conductor_events_sqs.wire import MAX_PAYLOAD_BYTES, META

from conductor_events.event_queues import EventQueues
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task

ReceiveAll = Callable[..., list[Any]]


async def test_event_task_payload_is_what_a_boto3_consumer_receives(
    queues: EventQueues, receive_all: ReceiveAll
) -> None:
    task = EventTask(
        sink="sqs:conductor_doug_testing",
        input_parameters={"myKey": "myValue", "myNumber": 100, "workflowType": "overwritten"},
        workflow_type="doug_workflow",
        workflow_version=3,
        correlation_id="order-8812",
        task_to_domain={"*": "team-a"},
    )
    result = await execute_event_task(task, queues)
    assert result.status is TaskStatus.COMPLETED, result.reason_for_incompletion
    assert result.output_data["event_produced"] == "sqs:conductor_doug_testing"

    (received,) = receive_all("conductor_doug_testing", 1)
    body = json.loads(received["Body"])
    assert body == {
        "myKey": "myValue",
        "myNumber": 100,
        "sink": "sqs:conductor_doug_testing",
        "asyncComplete": False,
        "workflowInstanceId": task.workflow_instance_id,
        "workflowType": "doug_workflow",  # system fields overwrite same-named inputs
        "workflowVersion": 3,
        "correlationId": "order-8812",
        "taskToDomain": {"*": "team-a"},
    }
    assert body == task.payload()
    meta = json.loads(received["MessageAttributes"][META]["StringValue"])
    assert meta["id"] == task.task_id  # message id = task id, as in Conductor


async def test_async_complete_publishes_and_stays_in_progress(
    queues: EventQueues, receive_all: ReceiveAll, qname: str
) -> None:
    task = EventTask(sink=f"sqs:{qname}", input_parameters={"k": 1}, async_complete=True)
    result = await execute_event_task(task, queues)
    assert result.status is TaskStatus.IN_PROGRESS
    (received,) = receive_all(qname, 1)
    assert json.loads(received["Body"])["asyncComplete"] is True


async def test_event_task_fails_when_sqs_would_refuse_the_payload(
    queues: EventQueues, qname: str
) -> None:
    task = EventTask(sink=f"sqs:{qname}", input_parameters={"blob": "x" * MAX_PAYLOAD_BYTES})
    result = await execute_event_task(task, queues)
    assert result.status is TaskStatus.FAILED
    assert result.reason_for_incompletion is not None
    assert f"publish to 'sqs:{qname}' was not confirmed" in result.reason_for_incompletion
    assert "over the SQS limit" in result.reason_for_incompletion
