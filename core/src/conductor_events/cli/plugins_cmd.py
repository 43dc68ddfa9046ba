"""``conductor-events plugins``."""

from __future__ import annotations

import json

import click

from conductor_events.cli.app import App, config_options, pass_app


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@config_options
@pass_app
def plugins(app: App, as_json: bool) -> None:
    """List every discovered plugin: its queue types, hooks, status and error."""
    from conductor_events.errors import ConfigError
    from conductor_events.plugins import DISABLED_BY_CONFIG, LOADED

    records = app.plugins.records()
    try:
        config = app.configuration()
    except ConfigError:
        config = None
    if config is not None:
        for record in records:
            if (
                record.status == LOADED
                and record.queue_types
                and not any(config.enabled(t) for t in record.queue_types)
            ):
                record.status = DISABLED_BY_CONFIG
    if as_json:
        click.echo(json.dumps([r.as_json() for r in records], indent=2))
        return
    rows = [("NAME", "DISTRIBUTION", "VERSION", "QUEUE TYPES", "STATUS")]
    rows += [
        (r.name, r.distribution or "-", r.version or "-", ",".join(r.queue_types) or "-", r.status)
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    for record in records:
        if record.error:
            click.echo(f"{record.name}: {record.error}", err=True)
