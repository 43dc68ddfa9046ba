"""The worker's per-task counts (labelled once per task type) and poller state metric, under
load, with malformed tasks, failed updates and failed polls, over two task types."""

from __future__ import annotations

from conductor_events.event_queues import EventQueues
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import TASK_TYPE, WORKFLOW, WorkerFactory, eventually, start

SINK = "local:metrics-out"
OTHER = "other_publish"
UPDATED = "conductor_events_worker_tasks_updated_total"


async def test_counts_land_on_their_task_type_under_load_with_malformed_tasks(
    double: ConductorDouble, queues: EventQueues, run_worker: WorkerFactory
) -> None:
    double.register_workflow(
        "other_flow",
        [("publish", OTHER)],
        inputs={"publish": {"sink": "${workflow.input.sink}", "order": "${workflow.input.order}"}},
    )
    for task_type in (TASK_TYPE, OTHER):
        double.register_task_def(task_type, retry_count=0)  # a FAILED task is not retried
    start(double, SINK, 150)
    for n in range(20):  # malformed: no sink to publish to
        double.start_workflow(WORKFLOW, input={"sink": "", "order": n})
    for n in range(50):
        double.start_workflow("other_flow", input={"sink": SINK, "order": n})
    double.inject(500, times=5, method="POST", path=r"^/api/tasks$")
    double.inject(500, times=2, method="GET", path=rf"/tasks/poll/batch/{OTHER}$")

    async with run_worker(
        queues, task_types=(TASK_TYPE, OTHER), concurrency=32, poll_count=32
    ) as worker:

        def updated(task_type: str, status: str) -> float:
            return worker.value(UPDATED, task_type=task_type, status=status)

        await eventually(
            lambda: (
                (
                    updated(TASK_TYPE, "COMPLETED")
                    + updated(TASK_TYPE, "FAILED")
                    + updated(OTHER, "COMPLETED")
                )
                >= 220
            ),
            what="every task updated",
        )
        value = worker.value
        assert updated(TASK_TYPE, "COMPLETED") == 150
        assert updated(TASK_TYPE, "FAILED") == 20
        assert updated(OTHER, "COMPLETED") == 50
        assert updated(OTHER, "FAILED") == 0
        assert value("conductor_events_worker_tasks_received_total", task_type=TASK_TYPE) == 170
        assert value("conductor_events_worker_tasks_received_total", task_type=OTHER) == 50
        assert value("conductor_events_worker_task_seconds_count", task_type=TASK_TYPE) == 170
        assert value("conductor_events_worker_task_seconds_count", task_type=OTHER) == 50
        retries = sum(
            value("conductor_events_worker_update_retries_total", task_type=t)
            for t in (TASK_TYPE, OTHER)
        )
        assert retries == 5
        assert value("conductor_events_worker_polls_total", task_type=OTHER, result="error") == 2
        assert (
            value("conductor_events_worker_polls_total", task_type=TASK_TYPE, result="error") == 0
        )
        for task_type in (TASK_TYPE, OTHER):  # back to polling after the failed polls
            states = {
                state: value(
                    "conductor_events_worker_poller_state", task_type=task_type, state=state
                )
                for state in ("starting", "polling", "backoff", "stopped")
            }
            assert states == {"starting": 0, "polling": 1, "backoff": 0, "stopped": 0}
            assert worker.worker.states[task_type].value == "polling"
        # a status's series appears with its first update, as before they were labelled once
        assert f'{UPDATED}{{status="IN_PROGRESS"' not in worker.metrics.render().decode()
        await worker.stop()
    for task_type in (TASK_TYPE, OTHER):
        assert (
            worker.value(
                "conductor_events_worker_poller_state", task_type=task_type, state="stopped"
            )
            == 1
        )
