"""Handlers ready to run: condition and templates compiled, grouped by event.

:func:`prepare_handler` compiles what a validated handler holds as text (its condition, its
``${...}`` templates), turning a syntax error into a problem at the value's JSON path.
:class:`HandlerSet` answers "which active handlers does this event have", by the exact event
string, as Conductor matches ``queue.getType() + ":" + queue.getName()``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

from conductor_events_handlers.actions import PreparedAction, TemplateFieldError, prepare_action
from conductor_events_handlers.conditions import Condition, compile_condition
from conductor_events_handlers.jsonpos import Path
from conductor_events_handlers.model import EventHandler
from conductor_events_handlers.scripting import ScriptEngine, ScriptError
from conductor_events_handlers.validation import PathProblem


@dataclass(frozen=True, slots=True)
class PreparedHandler:
    """A handler with its condition and action templates compiled."""

    handler: EventHandler
    condition: Condition
    actions: tuple[PreparedAction, ...]

    @property
    def name(self) -> str:
        return self.handler.name

    @property
    def event(self) -> str:
        return self.handler.event

    @property
    def active(self) -> bool:
        return self.handler.active


def prepare_handler(
    handler: EventHandler,
    engine: ScriptEngine,
    allowed_env: Collection[str] = (),
    base: Path = (),
) -> tuple[PreparedHandler | None, list[PathProblem]]:
    """Compile a handler's condition and templates; problems carry the path under ``base``."""
    problems: list[PathProblem] = []
    condition: Condition | None = None
    try:
        condition = compile_condition(handler.condition, handler.evaluator_type, engine)
    except ScriptError as exc:
        problems.append(
            PathProblem((*base, "condition"), f"the condition does not compile: {exc.message}")
        )
    actions: list[PreparedAction] = []
    for index, action in enumerate(handler.actions):
        try:
            actions.append(prepare_action(action, index, allowed_env))
        except TemplateFieldError as exc:
            for path, message in exc.problems:
                problems.append(PathProblem((*base, "actions", index, *path), message))
    if problems or condition is None:
        return None, problems
    return PreparedHandler(handler, condition, tuple(actions)), problems


class HandlerSet:
    """Prepared handlers by event; only active ones are returned for an event."""

    def __init__(self, handlers: Iterable[PreparedHandler] = ()) -> None:
        self._handlers = tuple(handlers)
        by_event: dict[str, list[PreparedHandler]] = {}
        for prepared in self._handlers:
            if prepared.active:
                by_event.setdefault(prepared.event, []).append(prepared)
        self._by_event = {event: tuple(found) for event, found in by_event.items()}

    def for_event(self, event: str) -> tuple[PreparedHandler, ...]:
        """The active handlers of ``event``, in the order they were defined."""
        return self._by_event.get(event, ())

    def events(self) -> list[str]:
        """Every event that has an active handler: what a consumer subscribes to."""
        return list(self._by_event)

    def get(self, name: str) -> PreparedHandler | None:
        return next((h for h in self._handlers if h.name == name), None)

    def __iter__(self) -> Iterator[PreparedHandler]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)
