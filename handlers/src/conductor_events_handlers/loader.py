"""Reading handler definitions from JSON files, with every problem located.

A file holds one handler (a JSON object) or several (a JSON list of objects); a directory
stands for its ``*.json`` files, in name order. Each problem is reported as
``FILE:LINE:COLUMN: PATH: message``, where ``PATH`` is the JSON path of the value it is about
(``[1].actions[0].complete_task.workflowId``). Problems: a file that cannot be read or is not
JSON, a definition that fails :mod:`~conductor_events_handlers.validation`, a condition or
template that does not compile (:mod:`~conductor_events_handlers.registry`), an event whose
queue type is not installed or not enabled, and a handler name used twice.

Every problem of every file is collected; nothing stops at the first, and a handler whose
definition has problems still has its condition and templates compiled, so one run shows them
all. A warning (an unknown field inside an action, which Conductor ignores) is reported as
``FILE:LINE:COLUMN: PATH: warning: message`` and does not stop the handler from loading;
:func:`load_handlers` logs each one when it loads the files.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING

import structlog

from conductor_events.errors import ConductorEventsError
from conductor_events_handlers.jsonpos import (
    Document,
    JsonSyntaxError,
    Path,
    Position,
    parse,
    path_text,
)
from conductor_events_handlers.registry import HandlerSet, PreparedHandler, prepare_handler
from conductor_events_handlers.scripting import ScriptEngine
from conductor_events_handlers.validation import PathProblem, check_handler

if TYPE_CHECKING:
    from conductor_events.config.model import Configuration
    from conductor_events.plugins import PluginHost

log = structlog.get_logger(__name__)

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
    """One problem in a handler file; a ``warning`` does not stop its handler from loading."""

    file: str
    message: str
    position: Position | None = None
    path: str | None = None
    warning: bool = False

    @property
    def where(self) -> str:
        """``FILE:LINE:COLUMN``, or ``FILE`` when the problem has no position."""
        return f"{self.file}:{self.position}" if self.position else self.file

    def __str__(self) -> str:
        what = f"{self.path}: " if self.path else ""
        kind = "warning: " if self.warning else ""
        return f"{self.where}: {what}{kind}{self.message}"


@dataclass
class LoadResult:
    """The handlers that loaded, and every problem and warning found on the way."""

    handlers: HandlerSet
    findings: list[HandlerProblem] = field(default_factory=list)
    """Problems and warnings, file by file, each handler's in reading order."""
    files: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[HandlerProblem]:
        """The findings that are errors: any of them and the files must not be run."""
        return [finding for finding in self.findings if not finding.warning]

    @property
    def warnings(self) -> list[HandlerProblem]:
        return [finding for finding in self.findings if finding.warning]

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
    log_warnings: bool = True,
) -> LoadResult:
    """Load and prepare every handler in ``paths``; collect every problem and warning.

    With ``log_warnings`` each warning is also logged (``handlers.definition.warning``, with
    its file:line:column and field), once per load, so a service shows what it ignores; a
    command that prints the warnings itself turns that off.
    """
    files, findings = handler_files(paths)
    loaded: list[PreparedHandler] = []
    first_seen: dict[str, str] = {}
    for file in files:
        name = str(file)
        document = _read(file, findings)
        if document is None:
            continue
        entries: list[tuple[Path, object]]
        if isinstance(document.value, list):
            entries = [((index,), item) for index, item in enumerate(document.value)]
        else:
            entries = [((), document.value)]
        for base, raw in entries:
            prepared, path_problems = _load_one(raw, base, engine, allowed_env, check_event)
            handler_name = raw.get("name") if isinstance(raw, dict) else None
            if isinstance(handler_name, str) and handler_name:
                where = f"{name}:{document.position((*base, 'name'))}"
                if handler_name in first_seen:
                    path_problems.append(
                        PathProblem(
                            (*base, "name"),
                            f"handler name {handler_name!r} is already defined at "
                            f"{first_seen[handler_name]}",
                        )
                    )
                    prepared = None
                else:
                    first_seen[handler_name] = where
            located = [_locate(name, document, p) for p in path_problems]
            findings.extend(sorted(located, key=_reading_order))
            if prepared is not None:
                loaded.append(prepared)
    result = LoadResult(HandlerSet(loaded), findings, [str(f) for f in files])
    if log_warnings:
        for warning in result.warnings:
            log.warning(
                "handlers.definition.warning",
                location=warning.where,
                field=warning.path,
                problem=warning.message,
            )
    return result


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
    """Check, then compile, one definition; a definition with errors is compiled too (as a
    draft), so its condition and template problems are reported in the same run."""
    draft, problems = check_handler(raw, base)
    if isinstance(raw, dict) and isinstance(raw.get("event"), str) and raw["event"]:
        reason = check_event(raw["event"]) if check_event is not None else None
        if reason is not None:
            problems.append(PathProblem((*base, "event"), reason))
    if draft is None:
        return None, problems
    prepared, compile_problems = prepare_handler(draft, engine, allowed_env, base)
    problems.extend(compile_problems)
    if any(not problem.warning for problem in problems):
        return None, problems
    return prepared, problems


def _reading_order(problem: HandlerProblem) -> tuple[int, int]:
    position = problem.position
    return (position.line, position.column) if position else (0, 0)


def _locate(file: str, document: Document, problem: PathProblem) -> HandlerProblem:
    return HandlerProblem(
        file,
        problem.message,
        document.position(problem.path),
        path_text(problem.path),
        problem.warning,
    )
