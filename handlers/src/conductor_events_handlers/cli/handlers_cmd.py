"""``conductor-events handlers check`` and ``conductor-events executions``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conductor_events.cli.app import App, config_options, pass_app

if TYPE_CHECKING:
    from conductor_events_handlers.executions import ExecutionRecord


@click.group()
def handlers() -> None:
    """Check event handler definitions."""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@handlers.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--strict", is_flag=True, help="Count warnings as problems: exit 2 on any.")
@config_options
@pass_app
def check(app: App, paths: tuple[str, ...], strict: bool) -> None:
    """Validate handler files (JSON: one handler, or a list) and directories of *.json files;
    without PATH, those of conductor.event-handlers.definitions.

    Print every problem as FILE:LINE:COLUMN: PATH: message: Conductor's own checks, and what
    Conductor leaves to run time (unknown actions and handler fields, conditions that do not
    compile, invalid ${...} paths, events whose queue type is not installed or enabled). An
    unknown field inside an action is a warning (FILE:LINE:COLUMN: PATH: warning: message):
    Conductor ignores it, and so does serve. Exit 0 when every handler is valid, 2 when not
    (or, with --strict, when there are warnings)."""
    from conductor_events_handlers.loader import event_check, load_handlers
    from conductor_events_handlers.scripting import ScriptEngine
    from conductor_events_handlers.settings import EventHandlerSettings

    config = app.configuration()
    problems = [str(p) for p in config.errors]
    settings = config.section(EventHandlerSettings)
    if not paths:
        paths = tuple(settings.definitions)
        if not paths:
            raise click.UsageError(
                "give handler files or directories, or set conductor.event-handlers.definitions"
            )
    engine = ScriptEngine(settings.script.timeout.total_seconds(), settings.script.memory_limit)
    try:
        result = load_handlers(
            paths,
            engine,
            allowed_env=settings.allowed_env,
            check_event=event_check(config, app.plugins),
            log_warnings=False,
        )
    finally:
        engine.close()
    for finding in [*problems, *(str(f) for f in result.findings)]:
        click.echo(finding)
    errors = len(problems) + len(result.problems)
    warnings = len(result.warnings)
    if errors or (strict and warnings):
        found = [_count(errors, "problem")] if errors else []
        found += [_count(warnings, "warning")] if warnings else []
        because = " (--strict)" if strict and warnings else ""
        click.echo(f"{' and '.join(found)} found{because}", err=True)
        raise click.exceptions.Exit(2)
    warned = f", {_count(warnings, 'warning')}" if warnings else ""
    click.echo(
        f"{_count(len(result.handlers), 'handler')} in {_count(len(result.files), 'file')}: "
        f"valid{warned}"
    )


def _time(seconds: float) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _detail(record: ExecutionRecord) -> str:
    if record.error:
        return record.error
    if record.output is None:
        return ""
    text = json.dumps(record.output, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


@click.command()
@click.option("--event", help="Only records of this event (type:location).")
@click.option("--message", "message_id", metavar="ID", help="Only records of this message id.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most the newest N records.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of records.")
@config_options
@pass_app
def executions(
    app: App, event: str | None, message_id: str | None, limit: int, as_json: bool
) -> None:
    """List execution records: what each handler action did with each message (id is
    <messageId>_<actionIndex>, as in Conductor), oldest first. The file is
    conductor.event-handlers.executions.path."""
    import asyncio

    from conductor_events_handlers.executions import ExecutionStore
    from conductor_events_handlers.settings import EventHandlerSettings

    config = app.configuration()
    config.raise_for_errors()
    path = config.section(EventHandlerSettings).executions.path
    records: list[ExecutionRecord] = []
    if Path(path).exists():
        store = ExecutionStore(path)
        try:
            records = asyncio.run(store.records(event=event, message_id=message_id, limit=limit))
        finally:
            store.close()
    if as_json:
        click.echo(json.dumps([r.as_json() for r in records], indent=2, ensure_ascii=False))
        return
    if not records:
        click.echo(f"no execution records in {path}", err=True)
        return
    rows: list[tuple[Any, ...]] = [
        ("ID", "EVENT", "HANDLER", "ACTION", "STATUS", "ATTEMPTS", "UPDATED", "DETAIL")
    ]
    rows += [
        (
            r.id,
            r.event,
            r.handler or "-",
            r.action or "-",
            r.status.value,
            str(r.attempts),
            _time(r.updated_at),
            _detail(r),
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, str(row[-1])]).rstrip())
