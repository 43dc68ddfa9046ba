"""The Conductor API double's HTTP handling: request heads read in one piece, under load
(pipelined requests, many connections), when a client dies mid-request, and for malformed
requests, with the double serving on afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from conductor_events_handlers.testing.conductor_double import ConductorDouble


@pytest.fixture
async def double() -> AsyncIterator[ConductorDouble]:
    async with ConductorDouble() as server:
        server.register_workflow("pub", [("publish", "event_publish")])
        yield server


def _request(method: str, path: str, body: object = None, *, close: bool = False) -> bytes:
    data = b"" if body is None else json.dumps(body).encode()
    head = [f"{method} /api{path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json"]
    if data:
        head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data


async def _responses(reader: asyncio.StreamReader, count: int) -> list[tuple[int, bytes]]:
    """Read ``count`` HTTP responses (status, body) from one connection."""
    found = []
    for _ in range(count):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        found.append((status, await reader.readexactly(length) if length else b""))
    return found


async def _serves(double: ConductorDouble) -> None:
    """The double still answers a normal client."""
    async with httpx.AsyncClient(base_url=double.url) as http:
        answer = await http.get("/metadata/workflow", params={"short": "true"})
    assert answer.status_code == 200
    assert answer.json() == [{"name": "pub", "version": 1}]


async def test_pipelined_requests_on_many_connections_are_each_answered_in_order(
    double: ConductorDouble,
) -> None:
    """20 connections, each writing 50 requests at once (polls, updates, reads of unknown
    tasks) before reading any answer: every request is answered, in order, and every task
    is handed out once and completed once."""
    workflows = [double.start_workflow("pub") for _ in range(20 * 25)]

    async def connection(index: int) -> list[tuple[int, bytes]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
        try:
            writer.write(
                _request("GET", f"/tasks/poll/batch/event_publish?count=25&workerid=c{index}")
            )
            [(status, body)] = await _responses(reader, 1)
            assert status == 200
            tasks = json.loads(body)
            requests = []
            for task in tasks:
                result = {
                    "workflowInstanceId": task["workflowInstanceId"],
                    "taskId": task["taskId"],
                    "status": "COMPLETED",
                    "outputData": {"by": index},
                }
                requests.append(_request("POST", "/tasks", result))
                requests.append(_request("GET", f"/tasks/unknown-{index}"))
            writer.write(b"".join(requests))
            return [(status, body), *await _responses(reader, len(requests))]
        finally:
            writer.close()

    answers = await asyncio.gather(*(connection(i) for i in range(20)))
    for index, found in enumerate(answers):
        polled = json.loads(found[0][1])
        assert len(polled) == 25
        updates, unknown = found[1::2], found[2::2]
        assert [(s, b.decode()) for s, b in updates] == [(200, t["taskId"]) for t in polled]
        assert unknown == [(204, b"")] * 25, index
    assert {double.workflows[w]["status"] for w in workflows} == {"COMPLETED"}
    assert {double.task(w, "publish")["pollCount"] for w in workflows} == {1}
    assert double.queue_depth("event_publish") == 0


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(b"POST /api/workflow HTTP/1.1\r\nContent-Le", id="inside-the-head"),
        pytest.param(
            b'POST /api/workflow HTTP/1.1\r\nContent-Length: 40\r\n\r\n{"name": "pu',
            id="inside-the-body",
        ),
    ],
)
async def test_a_client_gone_mid_request_changes_nothing_and_others_are_served(
    double: ConductorDouble, partial: bytes
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", double.port)
    writer.write(partial)
    await writer.drain()
    writer.transport.abort()  # as a killed client: no orderly end of the request
    await _serves(double)
    assert double.workflows == {}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"NONSENSE\r\n\r\n", id="request-line-without-target"),
        pytest.param(b"GET /api/tasks/x HTTP/1.1\r\nContent-Length: many\r\n\r\n", id="length"),
        pytest.param(
            b"GET /api/tasks/x HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
            id="head-over-the-read-limit",
        ),
    ],
)
async def test_a_malformed_request_closes_its_connection_without_an_answer(
    double: ConductorDouble, raw: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
    try:
        with contextlib.suppress(ConnectionResetError):  # closed while this still wrote
            writer.write(raw)
            await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:  # closed with the unread rest of the request
            answer = b""
        assert answer == b""  # closed, nothing answered
    finally:
        writer.close()
    await _serves(double)


async def test_malformed_json_and_a_request_without_headers_are_answered(
    double: ConductorDouble,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
    try:
        writer.write(
            b"POST /api/tasks HTTP/1.1\r\nContent-Length: 5\r\n\r\n{nope"
            b"GET /api/tasks/none HTTP/1.1\r\n\r\n"
            + _request("POST", "/tasks", {"taskId": "t"}, close=True)
        )
        (bad, body), (unknown, _), (invalid, problems) = await _responses(reader, 3)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # Connection: close honoured
    finally:
        writer.close()
    assert bad == 400
    assert json.loads(body)["message"] == "Invalid JSON in the request body"
    assert unknown == 204
    assert invalid == 400
    paths = {p["path"] for p in json.loads(problems)["validationErrors"]}
    assert paths == {"updateTask.taskResult.workflowInstanceId", "updateTask.taskResult.status"}
