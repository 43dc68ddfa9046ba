"""Handler files changed while the service runs: the new handlers take effect without a
restart, on their own (file polling) or on SIGHUP; a broken edit keeps the running ones."""

from __future__ import annotations

import signal
from pathlib import Path

from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import (
    Publisher,
    ServiceFactory,
    complete_handler,
    eventually,
    order_messages,
    replace_file,
    start_workflows,
    write_handlers,
    write_properties,
)

FIRST = "local:first"
SECOND = "local:second"


def _done_by(double: ConductorDouble, workflow_id: str) -> str | None:
    task = double.task(workflow_id, "task_a")
    return task["outputData"].get("by") if task["status"] == "COMPLETED" else None


async def test_changed_file_moves_listeners_to_the_new_events(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    properties = write_properties(tmp_path / "app.properties", double)
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler(FIRST, "first"))
    workflows = start_workflows(double, 4)
    messages = order_messages(workflows)
    service = serve("-c", str(properties), "--handlers", str(handlers))
    await service.wait_logged("serve.started")
    await publisher.publish(FIRST, messages[0:1])
    await eventually(lambda: _done_by(double, workflows[0]) == "first", 20, "the first handler")
    await publisher.publish(SECOND, messages[1:2])  # nobody listens to it yet

    write_handlers(handlers, complete_handler(SECOND, "second"))
    reloaded = await service.wait_logged("serve.reloaded")
    assert reloaded["reason"] == "files changed"
    assert reloaded["events"] == [SECOND]
    await eventually(lambda: _done_by(double, workflows[1]) == "second", 20, "the new handler")
    await service.wait_logged("serve.listener.stopped")  # the removed event's listener
    await publisher.publish(FIRST, messages[2:3])
    assert await publisher.depth(FIRST) == 1  # no longer consumed

    assert not service.logged("serve.reload.rejected")
    replace_file(handlers, '[{"name": "broken", ')  # a broken edit is refused ...
    await service.wait_logged("serve.reload.rejected")
    await publisher.publish(SECOND, messages[3:4])  # ... and the running handlers stay
    await eventually(lambda: _done_by(double, workflows[3]) == "second", 20, "the kept handler")

    service.signal(signal.SIGTERM)
    assert await service.wait_exit() == 0, service.text()
    assert _done_by(double, workflows[2]) is None


async def test_sighup_reloads_when_polling_is_off(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    properties = write_properties(
        tmp_path / "app.properties", double, **{"conductor.event-handlers.reload-interval": "0"}
    )
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler(FIRST, "v1"))
    workflows = start_workflows(double, 3)
    messages = order_messages(workflows)
    service = serve("-c", str(properties), "--handlers", str(handlers))
    await service.wait_logged("serve.started")

    write_handlers(handlers, complete_handler(FIRST, "v2"))
    await publisher.publish(FIRST, messages[0:1])  # polling is off: still the first version
    await eventually(lambda: _done_by(double, workflows[0]) == "v1", 20, "v1")

    service.signal(signal.SIGHUP)
    reloaded = await service.wait_logged("serve.reloaded")
    assert reloaded["reason"] == "SIGHUP"
    await publisher.publish(FIRST, messages[1:2])
    await eventually(lambda: _done_by(double, workflows[1]) == "v2", 20, "v2")

    service.signal(signal.SIGINT)
    assert await service.wait_exit() == 0, service.text()
