"""The core never imports the handlers package: it learns of its sections and commands only
through the hooks, so ``pip install conductor-events`` works without it. Every module of the
core is parsed and every import (at any depth, under ``TYPE_CHECKING`` too) checked."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core" / "src" / "conductor_events"
FORBIDDEN = "conductor_events_handlers"


def imports_of(source: str) -> list[tuple[int, str]]:
    """Every module an import statement names, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def handler_imports(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root.parent)}:{line}: {module}"
        for path in sorted(root.rglob("*.py"))
        for line, module in imports_of(path.read_text(encoding="utf-8"))
        if module == FORBIDDEN or module.startswith(f"{FORBIDDEN}.")
    ]


def test_the_core_imports_nothing_of_the_handlers_package() -> None:
    assert sorted(CORE.rglob("*.py")), f"no core modules under {CORE}"
    assert handler_imports(CORE) == []


def test_the_check_finds_every_form_of_import(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "a.py").write_text(
        "import conductor_events_handlers\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from conductor_events_handlers.settings import ServerSettings\n"
        "def f():\n"
        "    import conductor_events_handlers.serve.http as http\n"
        "    return importlib.import_module('conductor_events_handlers.plugin')\n"
        "import conductor_events_handlersx  # another package\n"
        "from conductor_events import hookimpl\n"
    )
    assert handler_imports(root) == [
        "pkg/a.py:1: conductor_events_handlers",
        "pkg/a.py:4: conductor_events_handlers.settings",
        "pkg/a.py:6: conductor_events_handlers.serve.http",
        "pkg/a.py:7: conductor_events_handlers.plugin",
    ]
