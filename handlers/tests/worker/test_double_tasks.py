"""The Conductor API double's worker-task queues behave as Conductor's: poll, long poll,
domains, response timeouts that retry under a new task id, and updates of ended tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from conductor_events_handlers.testing.conductor_double import ConductorDouble


@pytest.fixture
async def double() -> AsyncIterator[ConductorDouble]:
    async with ConductorDouble() as server:
        server.register_workflow(
            "pub",
            [("publish", "event_publish"), "after"],
            inputs={"publish": {"sink": "local:q", "n": "${workflow.input.n}"}},
        )
        yield server


async def _poll(http: httpx.AsyncClient, **params: str | int) -> httpx.Response:
    return await http.get("/tasks/poll/batch/event_publish", params=params)


async def test_poll_hands_out_each_task_once_in_progress(double: ConductorDouble) -> None:
    ids = [double.start_workflow("pub", input={"n": n}) for n in range(3)]
    assert double.queue_depth("event_publish") == 3
    assert double.task(ids[0], "publish")["status"] == "SCHEDULED"
    async with httpx.AsyncClient(base_url=double.url) as http:
        first = (await _poll(http, count=2, timeout=0, workerid="w1")).json()
        second = (await _poll(http, count=5, timeout=0, workerid="w2")).json()
        empty = await _poll(http, count=5, timeout=0)
    assert [t["workflowInstanceId"] for t in first + second] == ids
    assert [t["inputData"] for t in first + second] == [
        {"sink": "local:q", "n": n} for n in range(3)
    ]
    assert {t["status"] for t in first + second} == {"IN_PROGRESS"}
    assert [t["workerId"] for t in first + second] == ["w1", "w1", "w2"]
    assert empty.status_code == 200
    assert empty.json() == []
    assert double.task(ids[0], "publish")["pollCount"] == 1


async def test_long_poll_returns_a_task_queued_while_waiting(double: ConductorDouble) -> None:
    async with httpx.AsyncClient(base_url=double.url) as http:
        waiting = asyncio.ensure_future(_poll(http, count=1, timeout=5000))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        workflow_id = double.start_workflow("pub", input={"n": 1})
        tasks = (await waiting).json()
        too_long = await _poll(http, timeout=5001)
    assert [t["workflowInstanceId"] for t in tasks] == [workflow_id]
    assert too_long.status_code == 400
    assert too_long.json()["message"] == "Long Poll Timeout value cannot be more than 5 seconds"


async def test_domain_queues_are_separate(double: ConductorDouble) -> None:
    in_domain = double.start_workflow("pub", task_to_domain={"event_publish": "blue"})
    plain = double.start_workflow("pub")
    async with httpx.AsyncClient(base_url=double.url) as http:
        blue = (await _poll(http, count=5, timeout=0, domain="blue")).json()
        default = (await _poll(http, count=5, timeout=0)).json()
    assert [t["workflowInstanceId"] for t in blue] == [in_domain]
    assert blue[0]["domain"] == "blue"
    assert [t["workflowInstanceId"] for t in default] == [plain]


async def test_response_timeout_retries_under_a_new_task_id(double: ConductorDouble) -> None:
    double.register_task_def("event_publish", response_timeout_seconds=0.2, retry_count=1)
    workflow_id = double.start_workflow("pub")
    async with httpx.AsyncClient(base_url=double.url) as http:
        (polled,) = (await _poll(http, timeout=0)).json()
        await asyncio.sleep(0.4)
        (retry,) = (await _poll(http, timeout=1000)).json()
        late = await http.post(
            "/tasks",
            json={
                "workflowInstanceId": workflow_id,
                "taskId": polled["taskId"],
                "status": "COMPLETED",
            },
        )
        assert late.status_code == 200  # ignored: the task has ended
        assert double.tasks[polled["taskId"]]["status"] == "TIMED_OUT"
        assert retry["taskId"] != polled["taskId"]
        assert retry["retriedTaskId"] == polled["taskId"]
        assert retry["retryCount"] == 1
        await asyncio.sleep(0.4)  # no retries left: the workflow fails
    assert double.workflows[workflow_id]["status"] == "FAILED"


async def test_update_moves_the_workflow_on_and_in_progress_requeues(
    double: ConductorDouble,
) -> None:
    workflow_id = double.start_workflow("pub")
    async with httpx.AsyncClient(base_url=double.url) as http:
        (task,) = (await _poll(http, timeout=0)).json()
        result = {"workflowInstanceId": workflow_id, "taskId": task["taskId"]}
        await http.post(
            "/tasks", json={**result, "status": "IN_PROGRESS", "callbackAfterSeconds": 0}
        )
        (again,) = (await _poll(http, timeout=1000)).json()
        assert again["taskId"] == task["taskId"]
        assert again["pollCount"] == 2
        done = await http.post(
            "/tasks", json={**result, "status": "COMPLETED", "outputData": {"ok": True}}
        )
        assert done.text == task["taskId"]
    assert double.task(workflow_id, "publish")["outputData"] == {"ok": True}
    assert double.task(workflow_id, "after")["status"] == "IN_PROGRESS"
    assert double.queue_depth("event_publish") == 0
