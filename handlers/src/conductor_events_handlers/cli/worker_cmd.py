"""``conductor-events worker``: execute EVENT tasks polled from Conductor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from conductor_events.cli.app import App, config_options, pass_app
from conductor_events_handlers.cli.service_options import run_until_stopped, service_options

if TYPE_CHECKING:
    from conductor_events_handlers.serve.signals import ServiceSignals


@click.command()
@click.option(
    "--task-type",
    "task_types",
    multiple=True,
    metavar="NAME",
    help="Task type to poll; repeat for several. Default: conductor.event-worker.task-types "
    "(event_publish).",
)
@service_options(
    shutdown_help="On SIGTERM or SIGINT, how long tasks in hand may take to be published and "
    "updated; the ones left are retried by Conductor after their response timeout.",
    require_conductor_help="Exit with status 2 when the Conductor server cannot be used at "
    "start-up, instead of logging a warning and polling until it answers "
    "(conductor.server.require-at-start).",
)
@config_options
@pass_app
def worker(
    app: App,
    task_types: tuple[str, ...],
    http: tuple[str, int] | None,
    shutdown_timeout: float,
    require_conductor: bool,
) -> None:
    """Publish the EVENT tasks that workflows on a Conductor server hand to this worker.

    Polls the server (conductor.server.url) for tasks of the given types and executes each
    as an EVENT task: its inputData, with its workflow's fields, is published to
    the sink its 'sink' input names, with the task id as message id, then the task is updated
    COMPLETED (IN_PROGRESS with asyncComplete) with event_produced in its output, or FAILED
    with the reason when the broker did not confirm.

    A task is updated only after its publish is confirmed; a failed update is retried without
    publishing again. SIGTERM or SIGINT stops polling, finishes the tasks in hand
    (--shutdown-timeout) and exits 0; a second signal exits at once."""
    from conductor_events_handlers.worker.service import WorkerConfig, run_worker

    config = WorkerConfig(task_types, http, shutdown_timeout, require_conductor)

    async def run(signals: ServiceSignals) -> None:
        async with app.event_queues() as queues:
            await run_worker(queues, config, signals)

    run_until_stopped(run)
