"""The docs' commands work as written: every shell block marked ``<!-- runnable -->`` in
README.md and docs/*.md runs from the repository root and exits 0 (the convention is in
CONTRIBUTING.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = "<!-- runnable -->"
FENCE = "```sh"
BLOCK_TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    """A marked shell block: ``FILE:LINE`` of its first command, for failure messages."""

    where: str
    script: str


class MarkerError(ValueError):
    """A marker that is not directly followed by a ``sh`` block."""


def runnable_blocks(document: Path) -> list[Block]:
    """The marked blocks of a Markdown file, in order."""
    return blocks_in(document.read_text(), str(document.relative_to(ROOT)))


def blocks_in(markdown: str, name: str) -> list[Block]:
    lines = markdown.splitlines()
    blocks: list[Block] = []
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        where = f"{name}:{index + 1}"
        if index + 1 >= len(lines) or lines[index + 1].strip() != FENCE:
            raise MarkerError(f"{where}: {MARKER} must be followed by a {FENCE} line")
        body: list[str] = []
        for text in lines[index + 2 :]:
            if text.strip() == "```":
                break
            body.append(text)
        else:
            raise MarkerError(f"{where}: the {FENCE} block is never closed")
        blocks.append(Block(f"{name}:{index + 3}", "\n".join(body) + "\n"))
    return blocks


def working_dir(tmp_path: Path) -> Path:
    """A directory that looks like the repository root, but where new files land in tmp_path."""
    work = tmp_path / "repo"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name == ".git" or entry.suffix == ".db":
            continue
        (work / entry.name).symlink_to(entry)
    return work


def reader_environment() -> dict[str, str]:
    """The shell of a reader who followed the README: .venv first on PATH, nothing of ours set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_block(block: Block, cwd: Path) -> None:
    try:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.script],
            cwd=cwd,
            env=reader_environment(),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: still running after {BLOCK_TIMEOUT}s:\n{block.script}")
    assert done.returncode == 0, (
        f"{block.where}: exit {done.returncode}\n{block.script}\n"
        f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )


MARKED = [doc for doc in DOCUMENTS if runnable_blocks(doc)]


@pytest.mark.parametrize("document", MARKED, ids=lambda p: p.name)
def test_marked_blocks_run_from_the_repository_root(document: Path, tmp_path: Path) -> None:
    work = working_dir(tmp_path)
    before = sorted(p.name for p in ROOT.iterdir())
    for block in runnable_blocks(document):
        run_block(block, work)
    assert sorted(p.name for p in ROOT.iterdir()) == before, "a command wrote into the tree"


def test_the_getting_started_commands_are_marked() -> None:
    readme = "".join(b.script for b in runnable_blocks(ROOT / "README.md"))
    for command in ("activate", "publish", "listen", "config check", "plugins"):
        assert command in readme, f"README.md: no runnable block runs {command!r}"
    assert {doc.name for doc in MARKED} >= {"README.md", "cli.md", "local-queue.md"}


def test_blocks_are_found_with_the_line_of_their_first_command() -> None:
    text = f"# Doc\n\n{MARKER}\n```sh\necho one\necho two\n```\n\n```sh\nnot marked\n```\n"
    assert blocks_in(text, "docs/x.md") == [Block("docs/x.md:5", "echo one\necho two\n")]


def test_a_marker_must_precede_a_sh_block() -> None:
    text = f"text\n{MARKER}\n```python\nprint(1)\n```\n"
    with pytest.raises(MarkerError, match=r"docs/x\.md:2: .* must be followed by a ```sh line"):
        blocks_in(text, "docs/x.md")


def test_a_failing_command_fails_the_block(tmp_path: Path) -> None:
    block = Block("README.md:1", "true\nfalse\ntrue\n")
    with pytest.raises(AssertionError, match=r"README\.md:1: exit 1"):
        run_block(block, tmp_path)
