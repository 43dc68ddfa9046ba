"""``conductor-events config check`` and ``config show``."""

from __future__ import annotations

import json

import click

from conductor_events.cli.app import App, config_options, pass_app


@click.group()
def config() -> None:
    """Validate or display the configuration."""


@config.command()
@config_options
@pass_app
def check(app: App) -> None:
    """Validate every file against every installed plugin; print each problem as
    FILE:LINE: KEY: message. Exit 0 when valid, 2 when not."""
    configuration = app.configuration()
    for problem in configuration.problems:
        click.echo(str(problem))
    if configuration.problems:
        count = len(configuration.problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} found", err=True)
        raise click.exceptions.Exit(2)
    files = ", ".join(configuration.files) or "no files, defaults only"
    click.echo(f"configuration is valid ({files})")


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {key, value, source}.")
@config_options
@pass_app
def show(app: App, as_json: bool) -> None:
    """Print the effective configuration: every key, its value (secrets masked) and source."""
    from conductor_events.config.show import effective_entries, show_lines

    entries = effective_entries(app.configuration(), app.plugins)
    if as_json:
        rows = [{"key": e.key, "value": e.display_value, "source": str(e.source)} for e in entries]
        click.echo(json.dumps(rows, indent=2))
        return
    for line in show_lines(entries):
        click.echo(line)
