"""The Conductor API double answers as Conductor does, with real state and injectable faults."""

from __future__ import annotations

import httpx

from conductor_events_handlers.testing.conductor_double import ConductorDouble


async def test_answers_and_state(double: ConductorDouble) -> None:
    async with httpx.AsyncClient(base_url=double.url) as http:
        missing = await http.get("/workflow/nope")
        assert missing.status_code == 404
        assert missing.json() == {
            "status": 404,
            "message": "No such workflow found by id: nope",
            "instance": "conductor-double",
            "retryable": False,
        }
        assert (await http.get("/tasks/nope")).status_code == 204
        invalid = await http.post("/tasks", json={"status": "COMPLETED"})
        assert invalid.status_code == 400
        assert [e["message"] for e in invalid.json()["validationErrors"]] == [
            "Workflow Id cannot be null or empty",
            "Task ID cannot be null or empty",
        ]
        started = await http.post("/workflow", json={"name": "doug", "input": {"k": "v"}})
        assert started.headers["content-type"] == "text/plain"
        workflow_id = started.text
        task_id = double.task(workflow_id, "task_1_ref")["taskId"]
        for ref in ("task_1_ref", "task_2_ref"):
            task_id = double.task(workflow_id, ref)["taskId"]
            done = await http.post(
                "/tasks",
                json={
                    "workflowInstanceId": workflow_id,
                    "taskId": task_id,
                    "status": "COMPLETED",
                    "outputData": {"ref": ref},
                },
            )
            assert done.text == task_id
        workflow = (await http.get(f"/workflow/{workflow_id}")).json()
        assert workflow["status"] == "COMPLETED"
        assert workflow["output"] == {"ref": "task_2_ref"}
        # An update to an ended task is ignored, as WorkflowExecutor.updateTask does.
        again = await http.post(
            "/tasks",
            json={"workflowInstanceId": workflow_id, "taskId": task_id, "status": "FAILED"},
        )
        assert again.status_code == 200
        assert double.tasks[task_id]["status"] == "COMPLETED"
        conflict = await http.delete(f"/workflow/{workflow_id}")
        assert conflict.status_code == 409


async def test_faults_are_counted_and_matched(double: ConductorDouble) -> None:
    double.inject(500, times=2, method="GET", path="^/api/tasks/")
    async with httpx.AsyncClient(base_url=double.url) as http:
        assert (await http.post("/workflow", json={"name": "doug"})).status_code == 200
        assert (await http.get("/tasks/a")).status_code == 500
        assert (await http.get("/tasks/a")).status_code == 500
        assert (await http.get("/tasks/a")).status_code == 204


async def test_a_failed_task_fails_the_workflow(double: ConductorDouble) -> None:
    workflow_id = double.start_workflow("doug")
    task_id = double.task(workflow_id, "task_1_ref")["taskId"]
    async with httpx.AsyncClient(base_url=double.url) as http:
        await http.post(
            "/tasks",
            json={
                "workflowInstanceId": workflow_id,
                "taskId": task_id,
                "status": "FAILED",
                "reasonForIncompletion": "bad",
            },
        )
    assert double.workflows[workflow_id]["status"] == "FAILED"
    assert double.workflows[workflow_id]["reasonForIncompletion"] == "bad"
