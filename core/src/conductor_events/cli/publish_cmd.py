"""``conductor-events publish``: execute an EVENT task."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import click

from conductor_events.cli.app import App, config_options, pass_app

_JSON_TYPES: dict[type, str] = {
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


class _NotJson(ValueError):
    """A value that :func:`json.loads` accepts but JSON does not have."""


def _reject_constant(name: str) -> float:
    raise _NotJson(f"{name} is not a JSON value (JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJson(f"{text} is too large for a JSON number (it would be Infinity)")
    return value


def read_input(value: str) -> dict[str, Any]:
    """Parse ``--input``: JSON text, or ``@FILE`` holding JSON; it must be an object.

    Strict JSON: Python's parser also takes ``NaN`` and ``Infinity`` (and reads ``1e999`` as
    infinity), which no other JSON reader accepts, so a payload holding them would be
    published and then fail in every consumer.
    """
    source = "--input"
    text = value
    if value.startswith("@"):
        source = value[1:]
        if not source:
            raise click.BadParameter("@ needs a file name: @FILE", param_hint="--input")
        try:
            text = Path(source).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise click.BadParameter(
                f"cannot read {source}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                param_hint="--input",
            ) from None
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {source}: {exc.strerror}", param_hint="--input"
            ) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"invalid JSON in {source} at line {exc.lineno} column {exc.colno}: {exc.msg}",
            param_hint="--input",
        ) from None
    except _NotJson as exc:
        raise click.BadParameter(f"invalid JSON in {source}: {exc}", param_hint="--input") from None
    if not isinstance(data, dict):
        subject = "the input" if source == "--input" else source
        raise click.BadParameter(
            f"{subject} must be a JSON object (the task's inputParameters), "
            f"not {_JSON_TYPES.get(type(data), type(data).__name__)}",
            param_hint="--input",
        )
    return data


@click.command()
@click.argument("sink")
@click.option(
    "--input",
    "input_",
    default="{}",
    metavar="JSON|@FILE",
    help="The task's resolved inputParameters: a JSON object, or @FILE.",
)
@click.option("--workflow-id", help="workflowInstanceId (default: a new UUID).")
@click.option("--workflow-type", help="workflowType: the workflow's name.")
@click.option("--workflow-version", type=int, help="workflowVersion.")
@click.option("--correlation-id", help="correlationId.")
@click.option("--task-id", help="The task id, which is also the message id (default: a new UUID).")
@click.option(
    "--async-complete",
    is_flag=True,
    help="Leave the task IN_PROGRESS after publishing, as Conductor's asyncComplete.",
)
@config_options
@pass_app
def publish(
    app: App,
    sink: str,
    input_: str,
    workflow_id: str | None,
    workflow_type: str | None,
    workflow_version: int | None,
    correlation_id: str | None,
    task_id: str | None,
    async_complete: bool,
) -> None:
    """Execute an EVENT task: publish the input to SINK (type:location) and print the task
    result as JSON. Exit 1 when the task FAILED."""
    from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
    from conductor_events.messages import new_message_id

    task = EventTask(
        sink=sink,
        input_parameters=read_input(input_),
        workflow_instance_id=workflow_id or new_message_id(),
        workflow_type=workflow_type,
        workflow_version=workflow_version,
        correlation_id=correlation_id,
        task_id=task_id or new_message_id(),
        async_complete=async_complete,
    )

    async def run() -> Any:
        async with app.event_queues() as queues:
            return await execute_event_task(task, queues)

    result = asyncio.run(run())
    click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    if result.status is TaskStatus.FAILED:
        raise click.exceptions.Exit(1)
