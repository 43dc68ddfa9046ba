"""The docs stay true: generated blocks match the code, every hook is documented and tested,
and the README's test command is what CI runs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from conductor_events import hookspecs
from tests.support.docs_sync import BLOCK, DOCS, render

ROOT = DOCS.parent
HOOKS = [
    (name, fn)
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "conductor_events_spec")
]


def test_there_are_hooks() -> None:
    assert {name for name, _ in HOOKS} >= {"register_queue_types", "validate_config"}


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_generated_blocks_match_the_code(doc: Path) -> None:
    text = doc.read_text()
    assert render(text) == text, (
        f"docs/{doc.name} is out of date: run `python -m tests.support.docs_sync`"
    )


def test_docs_have_generated_blocks() -> None:
    names = {m.group("name") for doc in DOCS.glob("*.md") for m in BLOCK.finditer(doc.read_text())}
    assert {"config:core", "config:local", "cli:publish", "cli:listen"} <= names


def signature_line(name: str, fn: object) -> str:
    signature = inspect.signature(fn)  # type: ignore[arg-type]
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {name}({params}) -> {signature.return_annotation}: ..."


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[name for name, _ in HOOKS])
def test_every_hook_is_documented_with_its_signature(name: str, fn: object) -> None:
    text = (DOCS / "plugins.md").read_text()
    assert re.search(rf"^### `{name}\(", text, re.MULTILINE), f"no heading for {name}"
    assert signature_line(name, fn) in text, f"plugins.md lacks: {signature_line(name, fn)}"


@pytest.mark.parametrize("name", [name for name, _ in HOOKS])
def test_every_hook_has_a_test(name: str) -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert f"def test_hook_{name}(" in tests


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set up and run", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and line[0] != "#"]
    assert ci[-1] == "make test"
