"""Checks every plugin package wants besides the conformance scenarios.

* :func:`sdk_import_report`: loading the plugin imports no SDK (so ``conductor-events --help``
  and ``plugins`` stay fast); the SDK arrives on first use of the queue type.
* :func:`generated_block` and :func:`assert_key_table_current`: the key table in the plugin's
  docs is the one its settings model renders, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conductor_events.config.reference import reference_table
from conductor_events.config.settings import QueueSettings

_PROBE = """
import importlib, json, sys
from conductor_events.config import load_configuration
from conductor_events.plugins import PluginHost
from conductor_events.event_queues import EventQueues

plugin, sdk, sink, properties = json.loads(sys.argv[1])

def imported():
    return sorted(m for m in sys.modules if m.split(".")[0] in sdk)

host = PluginHost(entry_points=[], environ={})
host.add_plugin(importlib.import_module(plugin), "plugin")
report = {"queue_types": sorted(host.queue_types()), "at_load": imported(), "after_use": []}
if sink:
    config = load_configuration([properties] if properties else [], host, {})
    config.raise_for_errors()
    EventQueues(config, host).resolve(sink)
    report["after_use"] = imported()
print(json.dumps(report))
"""


@dataclass(frozen=True)
class ImportReport:
    """Which SDK modules a fresh interpreter had imported at each step."""

    queue_types: list[str]
    at_load: list[str]
    """After importing and registering the plugin."""
    after_use: list[str]
    """After resolving a sink of the plugin's type (its ``connect``); empty when not asked."""


def sdk_import_report(
    plugin: str,
    sdk: Sequence[str],
    *,
    sink: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> ImportReport:
    """Load ``plugin`` (a module name) in a fresh interpreter and report which of the ``sdk``
    top-level packages it imported; with ``sink``, also after that sink's first use, configured
    with ``properties`` (``enabled=true`` and whatever ``connect`` needs without I/O)."""
    with tempfile.TemporaryDirectory() as folder:
        path = ""
        if properties:
            path = str(Path(folder) / "probe.properties")
            Path(path).write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        argument = json.dumps([plugin, list(sdk), sink, path])
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, argument],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"loading {plugin} failed:\n{result.stderr}")
    return ImportReport(**json.loads(result.stdout.strip().splitlines()[-1]))


def generated_block(doc: Path, name: str) -> str:
    """The body of ``<!-- BEGIN GENERATED: NAME -->`` ... ``<!-- END GENERATED -->`` in ``doc``."""
    pattern = rf"<!-- BEGIN GENERATED: {re.escape(name)} -->\n(.*?)<!-- END GENERATED -->"
    match = re.search(pattern, doc.read_text(encoding="utf-8"), re.DOTALL)
    assert match is not None, f"{doc.name} has no generated block {name!r}"
    return match.group(1)


def assert_key_table_current(doc: Path, queue_type: str, settings: type[QueueSettings]) -> None:
    """The ``config:<section>`` block of ``doc`` is exactly the settings model's key table:
    ``<section>`` is the last part of the section the type binds (the settings model's
    ``section``, else ``conductor.event-queues.<queue_type>``), so types sharing a section
    share one table."""
    prefix = settings.section or f"conductor.event-queues.{queue_type}"
    name = f"config:{prefix.rsplit('.', 1)[1]}"
    expected = reference_table(settings, prefix) + "\n"
    assert generated_block(doc, name) == expected, (
        f"{doc.name}: the {name} key table is out of date; regenerate it with "
        "conductor_events.config.reference.reference_table"
    )
