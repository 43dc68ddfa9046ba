"""``/health``, ``/ready`` and ``/metrics`` of a running service, through a queue that is
unavailable at start (the listener backs off and connects once it is there)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import (
    EVENT,
    ServiceFactory,
    complete_handler,
    eventually,
    open_publisher,
    order_messages,
    start_workflows,
    write_handlers,
    write_properties,
)


def _metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_endpoints_follow_a_listener_from_backoff_to_ready(
    tmp_path: Path, double: ConductorDouble, serve: ServiceFactory
) -> None:
    queue_dir = tmp_path / "later"  # the local queue's directory does not exist yet
    properties = write_properties(
        tmp_path / "app.properties",
        double,
        **{"conductor.event-queues.local.path": str(queue_dir / "queue.db")},
    )
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler())
    service = serve("-c", str(properties), "--handlers", str(handlers), "--http", "127.0.0.1:0")
    listening = await service.wait_logged("serve.http.listening")
    assert listening["host"] == "127.0.0.1"
    await service.wait_logged("serve.listener.unavailable")

    status, body = await asyncio.to_thread(service.get, "/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    status, body = await asyncio.to_thread(service.get, "/ready")
    assert status == 503
    listener = json.loads(body)["listeners"][EVENT]
    assert listener["state"] in ("backoff", "starting")
    assert listener["restarts"] >= 1
    assert "does not exist" in listener["error"]

    queue_dir.mkdir()
    await service.wait_logged("serve.listener.connected")
    status, body = await asyncio.to_thread(service.get, "/ready")
    assert status == 200, body
    ready = json.loads(body)
    assert ready["status"] == "ready"
    assert ready["listeners"][EVENT]["state"] == "connected"
    assert ready["listeners"][EVENT]["error"] is None

    workflows = start_workflows(double, 3)
    async with open_publisher(properties) as publisher:
        await publisher.publish(EVENT, order_messages(workflows))
    await eventually(lambda: len(service.logged("handlers.message.acked")) == 3, 20, "acks")

    status, text = await asyncio.to_thread(service.get, "/metrics")
    assert status == 200
    prefix = "conductor_events_"
    assert _metric(text, prefix + "messages_received_total", event=EVENT) == 3
    assert _metric(text, prefix + "messages_settled_total", event=EVENT, disposition="acked") == 3
    assert _metric(text, prefix + "messages_settled_total", event=EVENT, disposition="nacked") == 0
    executions = _metric(
        text,
        prefix + "action_executions_total",
        event=EVENT,
        handler="complete_a",
        action="complete_task",
        status="COMPLETED",
    )
    assert executions == 3
    assert _metric(text, prefix + "handling_seconds_count", event=EVENT) == 3
    assert _metric(text, prefix + "listener_state", event=EVENT, state="connected") == 1
    assert _metric(text, prefix + "listener_state", event=EVENT, state="backoff") == 0
    restarts = _metric(text, prefix + "listener_restarts_total", event=EVENT)
    assert restarts is not None
    assert restarts >= 1

    status, _ = await asyncio.to_thread(service.get, "/nothing")
    assert status == 404
    service.signal(signal.SIGTERM)
    assert await service.wait_exit() == 0, service.text()
