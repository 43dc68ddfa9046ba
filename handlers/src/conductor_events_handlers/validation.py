"""Checking a handler definition: Conductor's own messages, and what Conductor does not check.

Conductor validates a handler with three bean constraints ("Missing event handler name",
"Missing event location", "No actions specified. Please specify at-least one action") and
nothing else: a misspelled action, an unknown ``evaluatorType`` (it silently falls back to
JavaScript), a condition that does not compile or an event whose queue type is not installed
all surface later, message by message, or never. Here each of those is a problem at load
time, reported with the JSON path of the offending value:

* unknown fields of the handler (``conditon``) with a did-you-mean, so a typo cannot silently
  drop a condition;
* unknown fields inside an action are warnings, not errors: Conductor ignores unknown JSON
  properties, and handlers written from its documentation carry some (``input`` next to a
  ``complete_task``'s ``output``), so they load and run as they do in Conductor;
* ``evaluatorType`` must be ``javascript``, ``graaljs`` or ``value-param``;
* every action must be one of the five types and carry its parameters object with the fields
  it needs (``taskId``, or ``workflowId`` and ``taskRefName``; ``name`` to start a workflow);
* values have the JSON types Conductor's model declares.

The condition and the ``${...}`` templates are compiled by
:mod:`~conductor_events_handlers.registry`; the event's queue type is checked by
:mod:`~conductor_events_handlers.loader`. So that one run reports every problem, rather than a
first batch that hides the next, :func:`check_handler` also returns a draft of a handler that
has problems: what could be read of it, for the loader to compile all the same.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conductor_events_handlers.jsonpos import Path, path_text
from conductor_events_handlers.model import (
    Action,
    ActionParameters,
    ActionType,
    EvaluatorType,
    EventHandler,
    StartWorkflow,
    TaskDetails,
    TerminateWorkflow,
    UpdateWorkflowVariables,
)

MISSING_NAME = "Missing event handler name"
MISSING_EVENT = "Missing event location"
MISSING_ACTIONS = "No actions specified. Please specify at-least one action"

_HANDLER_FIELDS = ("name", "event", "condition", "evaluatorType", "actions", "active")
_METADATA_FIELDS = (
    "description",
    "createdBy",
    "updatedBy",
    "createTime",
    "updateTime",
    "ownerApp",
    "tags",
)
"""Fields Conductor and Orkes add to a stored handler; accepted and ignored."""

_ACTION_KEYS = {t.value for t in ActionType}
_NOT_SUPPORTED = {"start_agent": "start_agent (Conductor's agent runtime) is not supported here"}
_TASK_FIELDS = ("workflowId", "taskRefName", "taskId", "output", "reasonForIncompletion")
_START_FIELDS = ("name", "version", "correlationId", "input", "taskToDomain")
_TERMINATE_FIELDS = ("workflowId", "terminationReason")
_VARIABLES_FIELDS = ("workflowId", "variables", "appendArray")


@dataclass(frozen=True, slots=True)
class PathProblem:
    """A problem with the value at ``path`` inside one handler definition; a ``warning``
    does not stop the handler from loading."""

    path: Path
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{path_text(self.path)}: {kind}{self.message}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Checker:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[PathProblem] = []

    def add(self, path: Path, message: str) -> None:
        self.problems.append(PathProblem((*self.base, *path), message))

    def warn(self, path: Path, message: str) -> None:
        self.problems.append(PathProblem((*self.base, *path), message, warning=True))

    def unknown_fields(
        self,
        data: Mapping[str, Any],
        known: tuple[str, ...],
        path: Path,
        allowed: tuple[str, ...] = (),
        *,
        ignored: bool = False,
    ) -> None:
        """Report each key that is neither ``known`` nor ``allowed``; an ``ignored`` one (as
        Conductor ignores unknown properties) is a warning, otherwise an error."""
        for key in data:
            if key in known or key in allowed:
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            if ignored:
                self.warn(
                    (*path, key), f"unknown field {key!r} is ignored, as Conductor ignores it{hint}"
                )
            else:
                self.add((*path, key), f"unknown field {key!r}{hint}")

    def string(self, data: Mapping[str, Any], key: str, path: Path) -> str | None:
        value = data.get(key)
        if value is None or isinstance(value, str):
            return value
        self.add((*path, key), f"{key} must be a string, not {_type_name(value)}")
        return None

    def boolean(self, data: Mapping[str, Any], key: str, path: Path) -> bool:
        value = data.get(key)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        self.add((*path, key), f"{key} must be true or false, not {_type_name(value)}")
        return False

    def mapping(self, data: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.add((*path, key), f"{key} must be an object, not {_type_name(value)}")
        return {}

    def template_value(self, data: Mapping[str, Any], key: str, path: Path) -> Any:
        """A field that may be a template: any JSON scalar, usually a string."""
        value = data.get(key)
        if isinstance(value, dict | list):
            self.add((*path, key), f"{key} must be a string, not {_type_name(value)}")
            return None
        return value


def build_handler(raw: Any, base: Path = ()) -> tuple[EventHandler | None, list[PathProblem]]:
    """Check one handler definition (a parsed JSON value) and build its model.

    Returns the handler (``None`` when it has errors; warnings do not count) and every
    problem found, each with the path of the value it is about, prefixed by ``base``.
    """
    draft, problems = check_handler(raw, base)
    if any(not problem.warning for problem in problems):
        return None, problems
    return draft, problems


def check_handler(raw: Any, base: Path = ()) -> tuple[EventHandler | None, list[PathProblem]]:
    """Check one handler definition and return every problem with a draft of its model.

    The draft is ``None`` only when ``raw`` is not an object. When there are errors it holds
    what could be read (an empty name or event, the actions that have a known type and a
    parameters object, no condition when the evaluator is unknown): enough to compile its
    condition and templates, not to run it.
    """
    check = _Checker(base)
    if not isinstance(raw, dict):
        check.add((), f"an event handler must be a JSON object, not {_type_name(raw)}")
        return None, check.problems
    check.unknown_fields(raw, _HANDLER_FIELDS, (), _METADATA_FIELDS)
    name = check.string(raw, "name", ())
    if not name:
        check.add(("name",) if "name" in raw else (), MISSING_NAME)
    event = check.string(raw, "event", ())
    if not event:
        check.add(("event",) if "event" in raw else (), MISSING_EVENT)
    condition = check.string(raw, "condition", ())
    evaluator = _evaluator(check, raw)
    active = check.boolean(raw, "active", ())
    actions = _actions(check, raw)
    draft = EventHandler(
        name=name or "",
        event=event or "",
        actions=tuple(actions),
        condition=condition if evaluator is not None else None,
        evaluator_type=evaluator or EvaluatorType.JAVASCRIPT,
        active=active,
    )
    return draft, check.problems


def _evaluator(check: _Checker, raw: Mapping[str, Any]) -> EvaluatorType | None:
    value = raw.get("evaluatorType")
    if value is None or value == "":
        return EvaluatorType.JAVASCRIPT
    if isinstance(value, str):
        try:
            return EvaluatorType(value)
        except ValueError:
            pass
    known = ", ".join(t.value for t in EvaluatorType)
    check.add(
        ("evaluatorType",),
        f"unknown evaluatorType {value!r}; use one of {known} "
        "(Conductor would silently evaluate it as JavaScript)",
    )
    return None


def _actions(check: _Checker, raw: Mapping[str, Any]) -> list[Action]:
    value = raw.get("actions")
    if value is None or value == []:
        check.add(("actions",) if "actions" in raw else (), MISSING_ACTIONS)
        return []
    if not isinstance(value, list):
        check.add(("actions",), f"actions must be a list, not {_type_name(value)}")
        return []
    actions = []
    for index, item in enumerate(value):
        action = _action(check, item, ("actions", index))
        if action is not None:
            actions.append(action)
    return actions


def _action(check: _Checker, item: Any, path: Path) -> Action | None:
    if not isinstance(item, dict):
        check.add(path, f"an action must be a JSON object, not {_type_name(item)}")
        return None
    kind = item.get("action")
    known = ", ".join(t.value for t in ActionType)
    if kind is None:
        check.add(path, f"action is missing; use one of {known}")
        return None
    if kind in _NOT_SUPPORTED:
        check.add((*path, "action"), _NOT_SUPPORTED[kind])
        return None
    if not isinstance(kind, str) or kind not in _ACTION_KEYS:
        close = difflib.get_close_matches(str(kind), sorted(_ACTION_KEYS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        check.add((*path, "action"), f"unknown action {kind!r}; {hint}use one of {known}")
        return None
    action_type = ActionType(kind)
    check.unknown_fields(
        item,
        ("action", "expandInlineJSON", action_type.value),
        path,
        (*_ACTION_KEYS, "start_agent"),
        ignored=True,
    )
    for other in sorted((_ACTION_KEYS | {"start_agent"}) - {action_type.value}):
        if item.get(other) is not None:
            check.add((*path, other), f"{other} is ignored by a {kind} action")
    expand = check.boolean(item, "expandInlineJSON", path)
    params_path = (*path, kind)
    params = item.get(kind)
    if not isinstance(params, dict):
        if params is None:
            check.add(path, f"a {kind} action needs a {kind!r} object with its parameters")
        else:
            check.add(params_path, f"{kind} must be an object, not {_type_name(params)}")
        return None
    parameters = _PARAMETERS[action_type](check, params, params_path)
    return Action(action_type, parameters, expand)


def _task_details(check: _Checker, data: dict[str, Any], path: Path) -> ActionParameters:
    check.unknown_fields(data, _TASK_FIELDS, path, ignored=True)
    details = TaskDetails(
        workflow_id=check.template_value(data, "workflowId", path),
        task_ref_name=check.template_value(data, "taskRefName", path),
        task_id=check.template_value(data, "taskId", path),
        output=check.mapping(data, "output", path),
        reason_for_incompletion=check.template_value(data, "reasonForIncompletion", path),
    )
    if not details.task_id and not (details.workflow_id and details.task_ref_name):
        check.add(path, f"{path[-1]} needs taskId, or workflowId and taskRefName")
    return details


def _start_workflow(check: _Checker, data: dict[str, Any], path: Path) -> ActionParameters:
    check.unknown_fields(data, _START_FIELDS, path, ignored=True)
    name = check.string(data, "name", path)
    if not name:
        check.add((*path, "name") if "name" in data else path, "start_workflow needs a name")
    elif "${" in name:
        check.add(
            (*path, "name"),
            "the workflow name is used as written, not templated (as in Conductor)",
        )
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        check.add((*path, "version"), f"version must be a whole number, not {_type_name(version)}")
        version = None
    correlation_id = check.template_value(data, "correlationId", path)
    workflow_input = check.mapping(data, "input", path)
    task_to_domain = data.get("taskToDomain")
    if task_to_domain is not None and not (
        isinstance(task_to_domain, dict)
        and all(isinstance(v, str) for v in task_to_domain.values())
    ):
        check.add((*path, "taskToDomain"), "taskToDomain must be an object of task name to domain")
        task_to_domain = None
    return StartWorkflow(name or "", version, correlation_id, workflow_input, task_to_domain)


def _terminate(check: _Checker, data: dict[str, Any], path: Path) -> ActionParameters:
    check.unknown_fields(data, _TERMINATE_FIELDS, path, ignored=True)
    workflow_id = check.template_value(data, "workflowId", path)
    if not workflow_id:
        check.add(path, "terminate_workflow needs a workflowId")
    return TerminateWorkflow(workflow_id, check.template_value(data, "terminationReason", path))


def _variables(check: _Checker, data: dict[str, Any], path: Path) -> ActionParameters:
    check.unknown_fields(data, _VARIABLES_FIELDS, path, ignored=True)
    workflow_id = check.template_value(data, "workflowId", path)
    if not workflow_id:
        check.add(path, "update_workflow_variables needs a workflowId")
    variables = check.mapping(data, "variables", path)
    if not variables and "variables" not in data:
        check.add(path, "update_workflow_variables needs a variables object")
    append = check.boolean(data, "appendArray", path)
    return UpdateWorkflowVariables(workflow_id, variables, append)


_PARAMETERS = {
    ActionType.COMPLETE_TASK: _task_details,
    ActionType.FAIL_TASK: _task_details,
    ActionType.START_WORKFLOW: _start_workflow,
    ActionType.TERMINATE_WORKFLOW: _terminate,
    ActionType.UPDATE_WORKFLOW_VARIABLES: _variables,
}
