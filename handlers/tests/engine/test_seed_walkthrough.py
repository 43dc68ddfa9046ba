"""The seed's walk-through, end to end on the local queue: a workflow's EVENT task publishes
with the workflow's id, the handler completes ``task_1_ref`` in the Conductor double, and the
execution is recorded and listed by the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from conductor_events.backend import SubscribeOptions
from conductor_events.config import load_configuration
from conductor_events.event_queues import EventQueues
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.plugins import PluginHost
from conductor_events_handlers.client import ConductorClient
from conductor_events_handlers.loader import event_check, load_handlers
from conductor_events_handlers.processor import Disposition, HandlerProcessor
from conductor_events_handlers.scripting import ScriptEngine
from conductor_events_handlers.settings import EventHandlerSettings
from conductor_events_handlers.testing.conductor_double import ConductorDouble
from conductor_events_handlers.testing.handler_consume import consume

from .conftest import EVENT, server_settings

SEED = Path(__file__).resolve().parents[3] / "examples" / "seed" / "handler.json"


async def test_event_task_to_handler_to_conductor(
    tmp_path: Path,
    host: PluginHost,
    properties: Path,
    engine: ScriptEngine,
    double: ConductorDouble,
) -> None:
    config = load_configuration([properties], host, {})
    loaded = load_handlers([SEED], engine, check_event=event_check(config, host))
    assert loaded.problems == []
    assert loaded.handlers.events() == [EVENT]
    workflow_id = double.start_workflow("doug", input={"customer": "c-1"})
    assert double.task(workflow_id, "task_1_ref")["status"] == "IN_PROGRESS"

    async with EventQueues(config, host) as queues:
        # The producer half: the workflow's EVENT task publishes to the handler's event.
        task = EventTask(
            sink=EVENT,
            input_parameters={"myKey": "myValue", "myNumber": 100},
            workflow_instance_id=workflow_id,
            workflow_type="doug",
            workflow_version=1,
        )
        result = await execute_event_task(task, queues)
        assert result.status is TaskStatus.COMPLETED

        # The consumer half: the handler runs on what arrives.
        async with ConductorClient(server_settings(double.url)) as client:
            processor = HandlerProcessor.create(
                loaded.handlers, engine, client, config.section(EventHandlerSettings)
            )
            try:
                options = SubscribeOptions(max_in_flight=4, prefetch=4, drain_timeout=1)
                async with await queues.subscribe(EVENT, options) as subscription:
                    outcomes = await consume(
                        subscription, EVENT, processor, count=1, idle_timeout=5
                    )
            finally:
                processor.close()

    assert [o.disposition for o in outcomes] == [Disposition.ACKED]
    assert outcomes[0].message_id == task.task_id  # the EVENT task's id is the message id
    completed = double.task(workflow_id, "task_1_ref")
    assert completed["status"] == "COMPLETED"
    assert completed["outputData"]["received"] == 100
    assert completed["outputData"]["from"] == EVENT
    assert completed["outputData"]["conductor.event.messageId"] == task.task_id
    assert completed["outputData"]["conductor.event.name"] == EVENT
    assert double.task(workflow_id, "task_2_ref")["status"] == "IN_PROGRESS"  # moved along

    listing = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "conductor_events",
            "-c",
            str(properties),
            "executions",
            "--message",
            task.task_id,
            "--json",
        ],
        env={**os.environ, "CONDUCTOR_EVENTS_PLUGINS": "local,handlers"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    records = json.loads(listing.stdout)
    assert [(r["id"], r["name"], r["action"], r["status"]) for r in records] == [
        (f"{task.task_id}_0", "complete_task_1_on_event", "complete_task", "COMPLETED")
    ]
