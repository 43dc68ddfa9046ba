"""The Conductor REST client against the API double: shapes, auth, failure classes, reuse."""

from __future__ import annotations

import socket

import pytest

from conductor_events_handlers.client import ConductorClient, ConductorError, NotFoundError
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import ATTEMPTS, server_settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_workflow_and_task_shapes(double: ConductorDouble, client: ConductorClient) -> None:
    workflow_id = await client.start_workflow(
        {"name": "doug", "version": 1, "input": {"a": 1}, "correlationId": "c-1"}
    )
    workflow = await client.get_workflow(workflow_id)
    assert workflow["workflowId"] == workflow_id
    assert workflow["status"] == "RUNNING"
    assert workflow["correlationId"] == "c-1"
    assert workflow["input"] == {"a": 1}
    task = workflow["tasks"][0]
    assert task["referenceTaskName"] == "task_1_ref"
    assert await client.get_task(task["taskId"]) == task
    assert (await client.get_workflow(workflow_id, include_tasks=False))["tasks"] == []
    body = {
        "workflowInstanceId": workflow_id,
        "taskId": task["taskId"],
        "status": "COMPLETED",
        "outputData": {"x": 1},
    }
    assert await client.update_task(body) == task["taskId"]
    assert double.task(workflow_id, "task_1_ref")["outputData"] == {"x": 1}
    assert double.workflows[workflow_id]["tasks"][-1]["referenceTaskName"] == "task_2_ref"
    request = double.requests_to("POST", "^/api/tasks$")[0]
    assert request.body == body
    assert request.headers["content-type"] == "application/json"


async def test_unknown_ids(client: ConductorClient) -> None:
    with pytest.raises(NotFoundError) as raised:
        await client.get_workflow("nope")
    assert raised.value.transient is False
    assert (
        raised.value.message == "GET /workflow/nope: HTTP 404: No such workflow found by id: nope"
    )
    assert await client.get_task("nope") is None  # Conductor answers 204
    with pytest.raises(NotFoundError):
        await client.update_task(
            {"workflowInstanceId": "w", "taskId": "nope", "status": "COMPLETED"}
        )
    with pytest.raises(NotFoundError):
        await client.start_workflow({"name": "unknown"})


async def test_variables_and_terminate(double: ConductorDouble, client: ConductorClient) -> None:
    workflow_id = double.start_workflow("doug")
    workflow = await client.update_variables(workflow_id, {"k": [1]})
    assert workflow["variables"] == {"k": [1]}
    await client.terminate_workflow(workflow_id, "stop it")
    assert double.workflows[workflow_id]["status"] == "TERMINATED"
    assert double.workflows[workflow_id]["reasonForIncompletion"] == "stop it"


@pytest.mark.parametrize(
    ("status", "transient"),
    [(500, True), (503, True), (429, True), (400, False), (403, False), (409, False)],
)
async def test_failure_classes(
    double: ConductorDouble, client: ConductorClient, status: int, transient: bool
) -> None:
    double.inject(status, times=ATTEMPTS, path="/api/workflow/", message="nope")
    with pytest.raises(ConductorError) as raised:
        await client.get_workflow("any")
    assert raised.value.transient is transient
    assert raised.value.status == status
    assert raised.value.message == f"GET /workflow/any: HTTP {status}: nope"
    # A transient failure is tried again (GET is idempotent); a request that is wrong is not.
    assert len(double.requests_to("GET", "^/api/workflow/any$")) == (ATTEMPTS if transient else 1)


async def test_conductor_not_answering_at_all_is_transient() -> None:
    url = f"http://127.0.0.1:{closed_port()}/api"
    async with ConductorClient(server_settings(url, connect_timeout="1s")) as client:
        with pytest.raises(ConductorError) as raised:
            await client.get_workflow("w")
    assert raised.value.transient is True
    assert f"cannot reach Conductor at {url}" in raised.value.message


async def test_a_slow_answer_times_out_as_transient(double: ConductorDouble) -> None:
    double.inject(None, delay=1.0, path="/api/workflow/")
    settings = server_settings(double.url, read_timeout="200ms", retries=0)
    async with ConductorClient(settings) as client:
        with pytest.raises(ConductorError) as raised:
            await client.get_workflow("w")
    assert raised.value.transient is True
    assert "did not answer in time (SocketTimeoutError)" in raised.value.message


async def test_connections_are_reused(double: ConductorDouble, client: ConductorClient) -> None:
    workflow_id = double.start_workflow("doug")
    for _ in range(20):
        await client.get_workflow(workflow_id)
    assert double.connections_opened == 1


async def test_bearer_token() -> None:
    async with ConductorDouble(token="t0k3n") as double:
        async with ConductorClient(server_settings(double.url)) as client:
            with pytest.raises(ConductorError) as raised:
                await client.get_task("x")
            assert raised.value.status == 401
            assert raised.value.transient is False
        settings = server_settings(double.url, auth={"token": "t0k3n"})
        async with ConductorClient(settings) as client:
            assert await client.get_task("x") is None
        assert double.requests[-1].headers["authorization"] == "Bearer t0k3n"


async def test_orkes_key_and_secret_are_exchanged_for_a_token_and_renewed() -> None:
    async with ConductorDouble(key_id="key", key_secret="secret") as double:
        double.register_workflow("w", ["t"])
        workflow_id = double.start_workflow("w")
        settings = server_settings(double.url, auth={"key": "key", "secret": "secret"})
        async with ConductorClient(settings) as client:
            await client.get_workflow(workflow_id)
            await client.get_workflow(workflow_id)
            assert len(double.requests_to("POST", "/api/token$")) == 1
            assert double.requests[0].body == {"keyId": "key", "keySecret": "secret"}
            double.expire_tokens()
            await client.get_workflow(workflow_id)  # 401, new token, same request again
            assert len(double.requests_to("POST", "/api/token$")) == 2
        wrong = server_settings(double.url, auth={"key": "key", "secret": "wrong"})
        async with ConductorClient(wrong) as client:
            with pytest.raises(ConductorError) as raised:
                await client.get_workflow(workflow_id)
        assert raised.value.transient is False
        assert "refused the application key 'key'" in raised.value.message
        assert "wrong" not in raised.value.message


def test_auth_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="must be set together"):
        server_settings("http://h/api", auth={"key": "k"})
    with pytest.raises(ValueError, match="not both"):
        server_settings("http://h/api", auth={"token": "t", "key": "k", "secret": "s"})
    with pytest.raises(ValueError, match="must start with http"):
        server_settings("localhost:8080")
