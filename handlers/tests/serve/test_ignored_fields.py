"""A handler written as Conductor's documentation prints it (``input`` next to a
``complete_task``'s ``workflowId``, ``taskRefName`` and ``output``) runs under ``serve``: the
unknown field is ignored, as Conductor ignores it, and logged once, when the files load."""

from __future__ import annotations

import signal
from pathlib import Path

from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import (
    EVENT,
    Publisher,
    ServiceFactory,
    complete_handler,
    completed,
    eventually,
    order_messages,
    start_workflows,
    write_handlers,
    write_properties,
)


async def test_serve_runs_a_handler_with_an_ignored_field_and_warns_once(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    documented = complete_handler()
    documented["actions"][0]["complete_task"]["input"] = {"source": "${source}"}
    handlers = write_handlers(tmp_path / "handlers.json", documented)
    properties = write_properties(tmp_path / "app.properties", double)
    workflows = start_workflows(double, 3)

    service = serve("-c", str(properties), "--handlers", str(handlers))
    await service.wait_logged("serve.started")
    await publisher.publish(EVENT, order_messages(workflows))
    await eventually(lambda: completed(double, workflows) == 3, 30, "three completed tasks")
    assert double.task(workflows[0], "task_a")["outputData"]["by"] == "complete_a"

    warnings = service.logged("handlers.definition.warning")
    assert len(warnings) == 1, warnings  # at load, not per message
    line = next(
        n for n, text in enumerate(handlers.read_text().splitlines(), 1) if '"input"' in text
    )
    assert warnings[0]["location"].startswith(f"{handlers}:{line}:")
    assert warnings[0]["field"] == "[0].actions[0].complete_task.input"
    assert warnings[0]["problem"] == "unknown field 'input' is ignored, as Conductor ignores it"
    assert warnings[0]["level"] == "warning"

    service.signal(signal.SIGTERM)
    assert await service.wait_exit() == 0, service.text()
