"""Conductor's EVENT task: publish the task's input, with the workflow's system fields, to a sink.

Semantics are Conductor's (``Event.java``), with its known defects fixed:

* payload = the resolved ``inputParameters`` + ``sink`` + ``asyncComplete`` +
  ``workflowInstanceId``, ``workflowType``, ``workflowVersion``, ``correlationId``
  (+ ``taskToDomain`` when given); system fields overwrite same-named inputs;
* output = payload + ``event_produced`` (the resolved ``type:location``);
* the message id is the task id; the published message is the payload, without
  ``event_produced`` (what Conductor's docs promise; its code also sends ``event_produced``);
* COMPLETED, or IN_PROGRESS with ``asyncComplete``; FAILED with a reason saying why when the
  sink cannot be resolved or the broker did not confirm the publish (Conductor's Kafka and SQS
  modules only log that, and the task completes with nothing delivered).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from conductor_events.errors import ConductorEventsError
from conductor_events.event_queues import EventQueues
from conductor_events.messages import JsonValue, Message, new_message_id

log = structlog.get_logger(__name__)


class TaskStatus(enum.StrEnum):
    COMPLETED = "COMPLETED"
    IN_PROGRESS = "IN_PROGRESS"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class EventTask:
    """One EVENT task to execute, with the workflow context Conductor would supply.

    ``input_parameters`` are already resolved (``${...}`` expressions evaluated by the caller).
    """

    sink: str
    input_parameters: Mapping[str, JsonValue] = field(default_factory=dict)
    workflow_instance_id: str = field(default_factory=new_message_id)
    workflow_type: str | None = None
    workflow_version: int | None = None
    correlation_id: str | None = None
    task_id: str = field(default_factory=new_message_id)
    async_complete: bool = False
    task_to_domain: Mapping[str, str] | None = None

    def payload(self) -> dict[str, JsonValue]:
        """The message Conductor publishes: inputs, then the fields that overwrite them."""
        payload: dict[str, JsonValue] = dict(self.input_parameters)
        payload["sink"] = self.sink
        payload["asyncComplete"] = self.async_complete
        payload["workflowInstanceId"] = self.workflow_instance_id
        payload["workflowType"] = self.workflow_type
        payload["workflowVersion"] = self.workflow_version
        payload["correlationId"] = self.correlation_id
        if self.task_to_domain is not None:
            payload["taskToDomain"] = dict(self.task_to_domain)
        return payload


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What Conductor records for the task."""

    task_id: str
    status: TaskStatus
    output_data: dict[str, Any]
    reason_for_incompletion: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result in Conductor's field names (``taskId``, ``outputData``, ...), a dict of
        JSON types: ``json.dumps`` it for text."""
        return {
            "taskId": self.task_id,
            "status": self.status.value,
            "outputData": self.output_data,
            "reasonForIncompletion": self.reason_for_incompletion,
        }


async def execute_event_task(task: EventTask, queues: EventQueues) -> TaskResult:
    """Publish the task's payload to its sink and say what became of the task. Never raises
    for a bad sink or a refused publish: those are a FAILED task with the reason."""
    payload = task.payload()
    output: dict[str, Any] = dict(payload)
    try:
        resolved = queues.resolve(task.sink)
        output["event_produced"] = str(resolved.address)
        message = Message(payload=payload, id=task.task_id)
        result = await resolved.client.publish(resolved.location, (message,))
    except ConductorEventsError as exc:
        return _failed(task, output, str(exc))
    except Exception as exc:
        log.exception("event_task.publish.error", task_id=task.task_id, sink=task.sink)
        return _failed(
            task, output, f"publish to {task.sink!r} failed: {type(exc).__name__}: {exc}"
        )
    if not result.ok:
        return _failed(
            task,
            output,
            f"publish to '{resolved.address}' was not confirmed: "
            + "; ".join(f.reason for f in result.failed),
        )
    status = TaskStatus.IN_PROGRESS if task.async_complete else TaskStatus.COMPLETED
    return TaskResult(task.task_id, status, output)


def _failed(task: EventTask, output: dict[str, Any], reason: str) -> TaskResult:
    log.warning("event_task.failed", task_id=task.task_id, sink=task.sink, reason=reason)
    return TaskResult(task.task_id, TaskStatus.FAILED, output, reason)
