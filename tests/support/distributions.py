"""Fake installed distributions on a temporary ``sys.path`` entry.

They are real to ``importlib.metadata`` (a ``.dist-info`` folder with METADATA and
entry_points.txt), so plugin discovery reads their name, version and entry points exactly as
it reads a pip-installed package's.
"""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

from conductor_events.plugins import ENTRY_POINT_GROUP


def make_distribution(
    root: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    """Write a distribution's metadata and its modules under ``root``."""
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def entry_points_under(root: Path) -> list[importlib.metadata.EntryPoint]:
    """The ``conductor_events`` entry points of the distributions under ``root`` only."""
    return [
        ep
        for dist in importlib.metadata.distributions(path=[str(root)])
        for ep in dist.entry_points
        if ep.group == ENTRY_POINT_GROUP
    ]
