"""Reading handler definitions from JSON files, with every problem located.

A file holds one handler (a JSON object) or several (a JSON list of objects); a directory
stands for its ``*.json`` files, in name order. Each problem is reported as
``FILE:LINE:COLUMN: PATH: message``, where ``PATH`` is the JSON path of the value it is about
(``[1].actions[0].complete_task.workflowId``). Problems: a file that cannot be read or is not
JSON, a definition that fails :mod:`~conductor_events.handlers.validation`, a condition or
template that does not compile (:mod:`~conductor_events.handlers.registry`), an event whose
queue type is not installed or not enabled, and a handler name used twice.

Every problem of every file is collected; nothing stops at the first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING

from conductor_events.errors import ConductorEventsError
from conductor_events.handlers.jsonpos import (
    Document,
    JsonSyntaxError,
    Path,
    Position,
    parse,
    path_text,
)
from conductor_events.handlers.registry import HandlerSet, PreparedHandler, prepare_handler
from conductor_events.handlers.scripting import ScriptEngine
from conductor_events.handlers.validation import PathProblem, build_handler

if TYPE_CHECKING:
    from conductor_events.config.model import Configuration
    from conductor_events.plugins import PluginHost

EventCheck = Callable[[str], str | None]
"""Says why an event string cannot be consumed here, or ``None`` when it can."""


class HandlerDefinitionError(ConductorEventsError):
    """Handler definitions have problems; ``problems`` holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class HandlerProblem:
    """One problem in a handler file."""

    file: str
    message: str
    position: Position | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.position}" if self.position else self.file
        what = f"{self.path}: " if self.path else ""
        return f"{where}: {what}{self.message}"


@dataclass
class LoadResult:
    """The handlers that loaded, and every problem found on the way."""

    handlers: HandlerSet
    problems: list[HandlerProblem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise HandlerDefinitionError([str(p) for p in self.problems])


def event_check(config: Configuration, plugins: PluginHost) -> EventCheck:
    """An :data:`EventCheck` against the configured, installed queue types."""
    from conductor_events.sinks import check_queue_type, split_sink

    def check(event: str) -> str | None:
        try:
            check_queue_type(split_sink(event, config.default_queue.type), config, plugins)
        except ConductorEventsError as exc:
            return f"this event cannot be consumed here: {exc}"
        return None

    return check


def handler_files(paths: Iterable[str | FilePath]) -> tuple[list[FilePath], list[HandlerProblem]]:
    """The files named, with directories expanded to their ``*.json`` files."""
    files: list[FilePath] = []
    problems: list[HandlerProblem] = []
    for raw in paths:
        path = FilePath(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                problems.append(HandlerProblem(str(path), "directory has no *.json files"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(HandlerProblem(str(path), "no such file or directory"))
    return files, problems


def load_handlers(
    paths: Iterable[str | FilePath],
    engine: ScriptEngine,
    *,
    allowed_env: Collection[str] = (),
    check_event: EventCheck | None = None,
) -> LoadResult:
    """Load and prepare every handler in ``paths``; collect every problem."""
    files, problems = handler_files(paths)
    loaded: list[PreparedHandler] = []
    first_seen: dict[str, str] = {}
    for file in files:
        name = str(file)
        document = _read(file, problems)
        if document is None:
            continue
        entries: list[tuple[Path, object]]
        if isinstance(document.value, list):
            entries = [((index,), item) for index, item in enumerate(document.value)]
        else:
            entries = [((), document.value)]
        for base, raw in entries:
            prepared, path_problems = _load_one(raw, base, engine, allowed_env, check_event)
            located = [_locate(name, document, p) for p in path_problems]
            problems.extend(sorted(located, key=_reading_order))
            if prepared is None:
                continue
            where = f"{name}:{document.position((*base, 'name'))}"
            if prepared.name in first_seen:
                problems.append(
                    _locate(
                        name,
                        document,
                        PathProblem(
                            (*base, "name"),
                            f"handler name {prepared.name!r} is already defined at "
                            f"{first_seen[prepared.name]}",
                        ),
                    )
                )
                continue
            first_seen[prepared.name] = where
            loaded.append(prepared)
    return LoadResult(HandlerSet(loaded), problems, [str(f) for f in files])


def _read(file: FilePath, problems: list[HandlerProblem]) -> Document | None:
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(HandlerProblem(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None
    except OSError as exc:
        problems.append(HandlerProblem(name, f"cannot read: {exc.strerror}"))
        return None
    try:
        return parse(text)
    except JsonSyntaxError as exc:
        problems.append(HandlerProblem(name, f"not JSON: {exc.message}", exc.position))
        return None


def _load_one(
    raw: object,
    base: Path,
    engine: ScriptEngine,
    allowed_env: Collection[str],
    check_event: EventCheck | None,
) -> tuple[PreparedHandler | None, list[PathProblem]]:
    handler, problems = build_handler(raw, base)
    if isinstance(raw, dict) and isinstance(raw.get("event"), str) and raw["event"]:
        reason = check_event(raw["event"]) if check_event is not None else None
        if reason is not None:
            problems.append(PathProblem((*base, "event"), reason))
    if handler is None:
        return None, problems
    prepared, compile_problems = prepare_handler(handler, engine, allowed_env, base)
    problems.extend(compile_problems)
    if problems:
        return None, problems
    return prepared, problems


def _reading_order(problem: HandlerProblem) -> tuple[int, int]:
    position = problem.position
    return (position.line, position.column) if position else (0, 0)


def _locate(file: str, document: Document, problem: PathProblem) -> HandlerProblem:
    return HandlerProblem(
        file, problem.message, document.position(problem.path), path_text(problem.path)
    )
