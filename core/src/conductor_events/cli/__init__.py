"""The ``conductor-events`` command. Exit codes: 0 success, 1 runtime failure, 2 usage or
configuration error. Errors are one line on standard error; ``--debug`` adds the traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from conductor_events.cli.app import cli
from conductor_events.config.masking import described_error
from conductor_events.errors import ConductorEventsError

__all__ = ["cli", "main", "one_line"]


def one_line(exc: click.ClickException) -> str:
    """A click error as one line: its message, and for a usage error the command's help.

    Click's own rendering is a usage block, a hint and the message on three or four lines;
    the CLI promises one ``error: ...`` line, which a script's log keeps whole.
    """
    message = " ".join(exc.format_message().split())
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message = message.rstrip(".")
        joiner = " See" if message.endswith("?") else "; see"
        message = f"{message}{joiner} '{ctx.command_path} --help'"
    return message


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with its code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # Without standalone mode click returns, rather than raises, a command's Exit code.
        code = cli.main(args=args, prog_name="conductor-events", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help, not an error
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ConductorEventsError as exc:
        if debug:
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"error: unexpected {described_error(exc)} (run with --debug for the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
