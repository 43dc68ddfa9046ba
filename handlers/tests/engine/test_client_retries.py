"""Which requests the client sends again, against the API double over a real socket: an
idempotent request after a transient failure, and a start request never once it may have
reached the server (a workflow must not start twice)."""

from __future__ import annotations

import pytest

from conductor_events_handlers.client import ConductorClient, ConductorError
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import server_settings


async def test_a_start_whose_answer_is_lost_is_not_sent_again(
    double: ConductorDouble, client: ConductorClient
) -> None:
    await client.get_task("warm-up")  # a kept-alive connection, which the start then reuses
    double.inject(None, method="POST", path="^/api/workflow$", drop=True)
    with pytest.raises(ConductorError) as raised:
        await client.start_workflow({"name": "doug"})
    assert len(double.workflows) == 1  # the server started it; nobody started it again
    assert len(double.requests_to("POST", "^/api/workflow$")) == 1
    assert raised.value.transient is False  # a redelivery must not start it again either
    assert raised.value.message.startswith(
        f"POST /workflow: cannot reach Conductor at {double.url}: ServerDisconnectedError:"
    )
    assert "the request may have reached the server" in raised.value.message


async def test_a_start_that_failed_with_5xx_is_not_sent_again(
    double: ConductorDouble, client: ConductorClient
) -> None:
    double.inject(500, method="POST", path="^/api/workflow$")
    with pytest.raises(ConductorError) as raised:
        await client.start_workflow({"name": "doug"})
    assert raised.value.transient is True  # the server answered: a later delivery may retry
    assert len(double.requests_to("POST", "^/api/workflow$")) == 1


async def test_a_task_update_whose_answer_is_lost_is_sent_again(
    double: ConductorDouble, client: ConductorClient
) -> None:
    workflow_id = double.start_workflow("doug")
    task = double.task(workflow_id, "task_1_ref")
    double.inject(None, method="POST", path="^/api/tasks$", drop=True)
    result = {"workflowInstanceId": workflow_id, "taskId": task["taskId"], "status": "COMPLETED"}
    assert await client.update_task(result) == task["taskId"]
    assert len(double.requests_to("POST", "^/api/tasks$")) == 2
    assert task["status"] == "COMPLETED"
    assert double.task(workflow_id, "task_2_ref")["status"] == "IN_PROGRESS"  # scheduled once


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_idempotent_requests_are_retried_after_a_transient_status(
    double: ConductorDouble, client: ConductorClient, status: int
) -> None:
    workflow_id = double.start_workflow("doug")
    double.inject(status, method="DELETE", path="^/api/workflow/")
    await client.terminate_workflow(workflow_id, "done")
    assert double.workflows[workflow_id]["status"] == "TERMINATED"
    double.inject(status, method="POST", path="/variables$")
    assert (await client.update_variables(workflow_id, {"k": 1}))["variables"] == {"k": 1}
    double.inject(status, method="GET", path="^/api/workflow/")
    assert (await client.get_workflow(workflow_id))["workflowId"] == workflow_id
    assert len(double.requests_to("DELETE", "^/api/workflow/")) == 2


async def test_retries_can_be_turned_off(double: ConductorDouble) -> None:
    double.inject(503, method="GET", path="^/api/tasks/")
    async with ConductorClient(server_settings(double.url, retries=0)) as client:
        with pytest.raises(ConductorError) as raised:
            await client.get_task("t")
    assert raised.value.transient is True
    assert len(double.requests_to("GET", "^/api/tasks/")) == 1
