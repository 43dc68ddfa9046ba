"""One version source, and every distribution of the repository moving in lockstep.

Each pyproject.toml declares its version dynamic, read at build time from its package's
``__version__`` (hatch's version source), so the number is written once per package; the
installed metadata says the same; and core, handlers and every plugin carry one number, which
the dependency ranges between them (``conductor-events>=0.1,<0.2``) rely on.
"""

from __future__ import annotations

import ast
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = sorted(
    [ROOT / "core", ROOT / "handlers", *(p for p in (ROOT / "plugins").iterdir() if p.is_dir())]
)
PACKAGES = [p for p in PROJECTS if p.name != "core"]
"""The distributions that depend on the core."""


def _pyproject(project: Path) -> dict[str, object]:
    with (project / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def _source_version(project: Path) -> str:
    """The ``__version__`` assigned in the module hatch reads, parsed (not imported)."""
    tool = _pyproject(project)["tool"]
    assert isinstance(tool, dict)
    path = project / tool["hatch"]["version"]["path"]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError(f"{path} assigns no __version__")


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_the_version_is_read_from_the_package(project: Path) -> None:
    meta = _pyproject(project)["project"]
    assert isinstance(meta, dict)
    assert "version" not in meta, "the version is written in pyproject.toml too"
    assert meta["dynamic"] == ["version"]
    assert importlib.metadata.version(meta["name"]) == _source_version(project)


def test_every_distribution_has_the_same_version() -> None:
    versions = {project.name: _source_version(project) for project in PROJECTS}
    assert len(set(versions.values())) == 1, versions


@pytest.mark.parametrize("project", PACKAGES, ids=[p.name for p in PACKAGES])
def test_each_package_requires_the_core_s_minor_series(project: Path) -> None:
    meta = _pyproject(project)["project"]
    assert isinstance(meta, dict)
    major, minor, _ = _source_version(ROOT / "core").split(".")
    expected = f"conductor-events>={major}.{minor},<{major}.{int(minor) + 1}"
    assert expected in meta["dependencies"]
