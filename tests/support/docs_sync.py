"""Generated blocks in docs/: CLI help and configuration-key tables, rendered from the code.

A block is ``<!-- BEGIN GENERATED: NAME -->`` ... ``<!-- END GENERATED -->``. NAME is
``cli:<command words>`` (that command's ``--help``), ``config:<section>`` (the key table of
``conductor.event-queues.<section>``: a queue type's name, unless its plugin binds another
section, as both AMQP types bind ``amqp``; ``config:core`` is ``conductor.default-event-queue``,
``config:server``, ``config:event-handlers`` and ``config:event-worker`` the sections the
handlers package declares) or ``file:<path>``
(a file of the repository, verbatim, so examples in the docs are the ones the tests run).

``python -m tests.support.docs_sync`` rewrites the blocks in place; tests/test_docs.py fails
when any block differs from what the code renders.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

from conductor_events.cli import cli
from conductor_events.config import DefaultEventQueueSettings
from conductor_events.config.reference import reference_table
from conductor_events.plugins import PluginHost

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[^>]+?) -->\n)(?P<body>.*?)(<!-- END GENERATED -->)",
    re.DOTALL,
)


def render_block(name: str) -> str:
    kind, _, arg = name.partition(":")
    if kind == "cli":
        result = CliRunner().invoke(
            cli, [*arg.split(), "--help"], prog_name="conductor-events", terminal_width=100
        )
        assert result.exit_code == 0, result.output
        return f"```text\n{result.output}```\n"
    if kind == "config":
        host = PluginHost(environ={})
        core = {
            reg.prefix.removeprefix("conductor."): reg.model
            for reg in host.config_sections().values()
        }
        core["core"] = DefaultEventQueueSettings
        if arg in core:
            return reference_table(core[arg]) + "\n"
        types = host.queue_types().values()
        found = [
            reg.queue_type
            for reg in types
            if reg.queue_type.section == f"conductor.event-queues.{arg}"
        ]
        assert found, f"no installed plugin binds conductor.event-queues.{arg}"
        return reference_table(found[0].settings, found[0].section) + "\n"
    if kind == "file":
        language = {".py": "python", ".toml": "toml", ".properties": "properties"}
        path = DOCS.parent / arg
        return f"```{language.get(path.suffix, 'text')}\n{path.read_text()}```\n"
    raise ValueError(f"unknown generated block {name!r}")


def render(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render_block(m.group("name")) + m.group(4), text)


def main(paths: list[str]) -> None:
    files = [Path(p) for p in paths] or sorted(DOCS.glob("*.md"))
    for path in files:
        text = path.read_text()
        updated = render(text)
        if updated != text:
            path.write_text(updated)
            print(f"updated {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
