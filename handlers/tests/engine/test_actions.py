"""Actions against the Conductor API double: the scenarios of Conductor's
TestSimpleActionProcessor, and the two actions only Orkes had."""

from __future__ import annotations

from typing import Any

import pytest

from conductor_events_handlers.actions import (
    ActionExecutor,
    ActionFailure,
    PreparedAction,
    prepare_action,
)
from conductor_events_handlers.client import ConductorClient
from conductor_events_handlers.testing.conductor_double import ConductorDouble
from conductor_events_handlers.validation import build_handler

from .conftest import ATTEMPTS

EVENT = "testEvent"
MESSAGE = "testMessage"


def prepared(action: dict[str, Any]) -> PreparedAction:
    handler, problems = build_handler({"name": "n", "event": "local:q", "actions": [action]})
    assert handler is not None, problems
    return prepare_action(handler.actions[0], 0)


async def run(client: ConductorClient, action: dict[str, Any], payload: Any) -> dict[str, Any]:
    return await ActionExecutor(client).execute(prepared(action), payload, EVENT, MESSAGE)


async def test_start_workflow_templates_the_correlation_id(
    double: ConductorDouble, client: ConductorClient
) -> None:
    action = {
        "action": "start_workflow",
        "start_workflow": {
            "name": "doug",
            "input": {"testInput": "${testId}"},
            "correlationId": "${correlationId}",
            "taskToDomain": {"*": "dev"},
        },
    }
    output = await run(client, action, {"correlationId": "test-id", "testId": "test_1"})
    workflow = double.workflows[output["workflowId"]]
    assert workflow["input"] == {
        "testInput": "test_1",
        "conductor.event.messageId": MESSAGE,
        "conductor.event.name": EVENT,
    }
    assert workflow["correlationId"] == "test-id"
    assert workflow["taskToDomain"] == {"*": "dev"}


async def test_start_workflow_takes_task_to_domain_from_the_payload(
    double: ConductorDouble, client: ConductorClient
) -> None:
    action = {
        "action": "start_workflow",
        "start_workflow": {"name": "doug", "input": {"testInput": "${testId}"}},
    }
    payload = {"testId": "test_1", "taskToDomain": {"testTask": "testDomain"}}
    output = await run(client, action, payload)
    workflow = double.workflows[output["workflowId"]]
    assert workflow["taskToDomain"] == {"testTask": "testDomain"}
    assert workflow["correlationId"] is None
    request = double.requests_to("POST", "^/api/workflow$")[-1].body
    assert request == {
        "name": "doug",
        "input": workflow["input"],
        "taskToDomain": {"testTask": "testDomain"},
    }


async def test_the_handler_task_to_domain_wins_over_the_payload(
    double: ConductorDouble, client: ConductorClient
) -> None:
    action = {
        "action": "start_workflow",
        "start_workflow": {"name": "doug", "version": 1, "taskToDomain": {"*": "dev"}},
    }
    output = await run(client, action, {"taskToDomain": {"testTask": "testDomain"}})
    assert double.workflows[output["workflowId"]]["taskToDomain"] == {"*": "dev"}
    assert double.requests_to("POST", "^/api/workflow$")[-1].body["version"] == 1


async def test_complete_task_by_reference_name(
    double: ConductorDouble, client: ConductorClient
) -> None:
    workflow_id = double.start_workflow("doug")
    action = {
        "action": "complete_task",
        "complete_task": {
            "workflowId": "${workflowId}",
            "taskRefName": "task_1_ref",
            "output": {
                "someNEKey": "${Message.someNEKey}",
                "someKey": "${Message.someKey}",
                "someNullKey": "${Message.someNullKey}",
            },
        },
    }
    payload = {"workflowId": workflow_id, "Message": {"someKey": "someData", "someNullKey": None}}
    await run(client, action, payload)
    task = double.task(workflow_id, "task_1_ref")
    assert task["status"] == "COMPLETED"
    output = task["outputData"]
    assert output["conductor.event.messageId"] == MESSAGE
    assert output["conductor.event.name"] == EVENT
    assert output["workflowId"] == workflow_id
    assert output["taskRefName"] == "task_1_ref"
    assert output["someKey"] == "someData"
    assert "someNEKey" in output
    assert output["someNEKey"] is None
    assert "someNullKey" in output
    assert output["someNullKey"] is None


async def test_complete_task_picks_the_latest_do_while_iteration(
    double: ConductorDouble, client: ConductorClient
) -> None:
    double.register_workflow("loop", [])
    workflow_id = double.start_workflow("loop")
    first = double.schedule_task(workflow_id, "testTask", iteration=1)
    double.tasks[first]["status"] = "COMPLETED"
    second = double.schedule_task(workflow_id, "testTask", iteration=2)
    action = {
        "action": "complete_task",
        "complete_task": {"workflowId": "${workflowId}", "taskRefName": "testTask"},
    }
    await run(client, action, {"workflowId": workflow_id, "taskRefName": "testTask"})
    assert double.tasks[second]["referenceTaskName"] == "testTask__2"
    assert double.tasks[second]["status"] == "COMPLETED"


async def test_complete_task_by_task_id(double: ConductorDouble, client: ConductorClient) -> None:
    workflow_id = double.start_workflow("doug")
    task_id = double.task(workflow_id, "task_1_ref")["taskId"]
    action = {
        "action": "complete_task",
        "complete_task": {"workflowId": "${workflowId}", "taskId": "${taskId}"},
    }
    output = await run(client, action, {"workflowId": workflow_id, "taskId": task_id})
    assert output["taskId"] == task_id
    assert double.tasks[task_id]["status"] == "COMPLETED"
    assert double.tasks[task_id]["outputData"]["taskId"] == task_id


async def test_fail_task_sets_the_reason(double: ConductorDouble, client: ConductorClient) -> None:
    workflow_id = double.start_workflow("doug")
    action = {
        "action": "fail_task",
        "fail_task": {
            "workflowId": "${id}",
            "taskRefName": "task_1_ref",
            "reasonForIncompletion": "payment ${status}",
        },
    }
    await run(client, action, {"id": workflow_id, "status": "declined"})
    task = double.task(workflow_id, "task_1_ref")
    assert task["status"] == "FAILED"
    assert task["reasonForIncompletion"] == "payment declined"
    assert double.workflows[workflow_id]["status"] == "FAILED"


async def test_an_ended_task_is_left_alone(
    double: ConductorDouble, client: ConductorClient
) -> None:
    workflow_id = double.start_workflow("doug")
    task = double.task(workflow_id, "task_1_ref")
    task["status"] = "COMPLETED"
    action = {"action": "complete_task", "complete_task": {"taskId": task["taskId"]}}
    output = await run(client, action, {})
    assert output["skipped"] == f"task {task['taskId']} had already ended as COMPLETED"
    assert double.requests_to("POST", "^/api/tasks$") == []


async def test_missing_workflow_and_task(double: ConductorDouble, client: ConductorClient) -> None:
    by_ref = {
        "action": "complete_task",
        "complete_task": {"workflowId": "${id}", "taskRefName": "task_9_ref"},
    }
    with pytest.raises(ActionFailure) as raised:
        await run(client, by_ref, {"id": "nope"})
    assert (raised.value.message, raised.value.transient) == (
        "No workflow found with ID: nope",
        False,
    )
    by_id = {"action": "complete_task", "complete_task": {"taskId": "${t}"}}
    with pytest.raises(ActionFailure) as raised:
        await run(client, by_id, {"t": "nope"})
    assert (raised.value.message, raised.value.transient) == (
        "No task found with taskId: nope",
        False,
    )
    # The workflow runs but the task is not scheduled yet: the event came early; retry later.
    workflow_id = double.start_workflow("doug")
    with pytest.raises(ActionFailure) as raised:
        await run(client, by_ref, {"id": workflow_id})
    assert raised.value.transient is True
    assert "may not be scheduled yet" in raised.value.message
    double.workflows[workflow_id]["status"] = "COMPLETED"
    with pytest.raises(ActionFailure) as raised:
        await run(client, by_ref, {"id": workflow_id})
    assert raised.value.transient is False
    # Nothing to address once substituted: a template path that does not exist.
    with pytest.raises(ActionFailure) as raised:
        await run(client, by_ref, {"other": 1})
    assert raised.value.transient is False
    assert "workflowId: None" in raised.value.message


async def test_terminate_workflow(double: ConductorDouble, client: ConductorClient) -> None:
    workflow_id = double.start_workflow("doug")
    action = {
        "action": "terminate_workflow",
        "terminate_workflow": {"workflowId": "${id}", "terminationReason": "cancelled by ${who}"},
    }
    output = await run(client, action, {"id": workflow_id, "who": "shop"})
    assert output == {"workflowId": workflow_id, "terminationReason": "cancelled by shop"}
    assert double.workflows[workflow_id]["status"] == "TERMINATED"
    assert double.workflows[workflow_id]["reasonForIncompletion"] == "cancelled by shop"
    double.workflows[workflow_id]["status"] = "COMPLETED"  # ended some other way: nothing to do
    again = await run(client, action, {"id": workflow_id, "who": "shop"})
    assert again["skipped"].startswith("the workflow had already ended")
    with pytest.raises(ActionFailure) as raised:
        await run(client, action, {"id": "nope"})
    assert raised.value.transient is False


async def test_update_workflow_variables(double: ConductorDouble, client: ConductorClient) -> None:
    workflow_id = double.start_workflow("doug")
    double.workflows[workflow_id]["variables"] = {"seen": ["a"], "count": 1}
    replace = {
        "action": "update_workflow_variables",
        "update_workflow_variables": {
            "workflowId": "${id}",
            "variables": {"count": "${n}", "seen": ["${item}"]},
        },
    }
    await run(client, replace, {"id": workflow_id, "n": 2, "item": "b"})
    assert double.workflows[workflow_id]["variables"] == {"seen": ["b"], "count": 2}
    append = {
        "action": "update_workflow_variables",
        "update_workflow_variables": {
            "workflowId": "${id}",
            "variables": {"seen": ["${item}"]},
            "appendArray": True,
        },
    }
    output = await run(client, append, {"id": workflow_id, "item": "c"})
    assert double.workflows[workflow_id]["variables"]["seen"] == ["b", "c"]
    assert output == {"workflowId": workflow_id, "variables": {"seen": ["b", "c"]}}


async def test_conductor_failures_keep_their_class(
    double: ConductorDouble, client: ConductorClient
) -> None:
    workflow_id = double.start_workflow("doug")
    action = {
        "action": "complete_task",
        "complete_task": {"workflowId": workflow_id, "taskRefName": "task_1_ref"},
    }
    double.inject(500, times=ATTEMPTS, method="POST", path="^/api/tasks$")
    with pytest.raises(ActionFailure) as raised:
        await run(client, action, {})
    assert raised.value.transient is True
    assert raised.value.message == "POST /tasks: HTTP 500: injected failure"
    double.inject(400, method="POST", path="^/api/tasks$", message="bad request")
    with pytest.raises(ActionFailure) as raised:
        await run(client, action, {})
    assert raised.value.transient is False
