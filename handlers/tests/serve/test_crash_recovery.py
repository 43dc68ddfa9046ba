"""The service killed halfway through 2,000 messages and started again: every message's
action took effect exactly once in Conductor, and nothing is left in the queue."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from conductor_events_handlers.executions import ExecutionStatus, ExecutionStore
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

MESSAGES = 2000
CONCURRENCY = 8


async def test_sigkill_halfway_then_restart_runs_every_action_exactly_once(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    properties = write_properties(tmp_path / "app.properties", double)
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler())
    workflows = start_workflows(double, MESSAGES)
    await publisher.publish(EVENT, order_messages(workflows))
    args = ("-c", str(properties), "--handlers", str(handlers), "--shutdown-timeout", "10")

    first = serve(*args)
    await first.wait_logged("serve.started")
    await eventually(lambda: completed(double, workflows) >= MESSAGES // 2, 60, "half done")
    first.signal(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    done_at_kill = completed(double, workflows)
    assert done_at_kill < MESSAGES, "the service finished before it was killed"

    second = serve(*args)
    await eventually(lambda: completed(double, workflows) == MESSAGES, 60, "all done")
    await eventually(lambda: _empty(publisher), 30, "an empty queue")
    second.signal(signal.SIGTERM)
    assert await second.wait_exit() == 0, second.text()

    # Each task_a was completed once, by its own message: task_b was scheduled exactly once
    # (a second effective completion would be visible), with the message's number.
    for n, workflow_id in enumerate(workflows):
        tasks = double.workflows[workflow_id]["tasks"]
        assert [t["referenceTaskName"] for t in tasks] == ["task_a", "task_b"]
        output = tasks[0]["outputData"]
        assert output["n"] == n
        assert output["conductor.event.messageId"] == f"m-{n}"

    # The execution records deduplicated every redelivery: the only repeated requests are
    # those of actions in flight when the process died (claimed, not yet recorded done),
    # at most one per concurrency slot, and Conductor ignores an update of a finished task.
    updates = Counter(r.body["taskId"] for r in double.requests_to("POST", r"^/api/tasks$"))
    repeated = {task: count for task, count in updates.items() if count > 1}
    assert len(updates) == MESSAGES
    assert len(repeated) <= CONCURRENCY, repeated
    assert all(count == 2 for count in repeated.values()), repeated

    store = ExecutionStore(tmp_path / "executions.db")
    try:
        records = await store.records(event=EVENT, limit=MESSAGES * 2)
    finally:
        store.close()
    assert len(records) == MESSAGES
    assert {r.status for r in records} == {ExecutionStatus.COMPLETED}
    assert {r.message_id for r in records} == {f"m-{n}" for n in range(MESSAGES)}


async def _empty(publisher: Publisher) -> bool:
    return await publisher.depth(EVENT) == 0 and await publisher.depth(EVENT + ".dlq") == 0
