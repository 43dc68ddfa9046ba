"""The event handler definition, in Conductor's JSON format (``EventHandler.java``).

A handler as written::

    {"name": "complete_waiting_task", "event": "sqs:conductor_doug_testing",
     "condition": "$.workflowType == 'doug'", "evaluatorType": "javascript",
     "actions": [{"action": "complete_task",
                  "complete_task": {"workflowId": "${workflowInstanceId}",
                                    "taskRefName": "task_1_ref"},
                  "expandInlineJSON": false}],
     "active": true}

These classes hold a definition that passed :mod:`~conductor_events_handlers.validation`;
string values that are templates (``${...}``) are kept as written and compiled separately.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonValue = Any


class ActionType(enum.StrEnum):
    """What an action does. ``terminate_workflow`` and ``update_workflow_variables`` exist in
    Conductor's model but only Orkes executes them; here all five run."""

    START_WORKFLOW = "start_workflow"
    COMPLETE_TASK = "complete_task"
    FAIL_TASK = "fail_task"
    TERMINATE_WORKFLOW = "terminate_workflow"
    UPDATE_WORKFLOW_VARIABLES = "update_workflow_variables"


class EvaluatorType(enum.StrEnum):
    """How a condition is evaluated. Conductor's default (no ``evaluatorType``) is JavaScript;
    ``graaljs`` is its other name for the same evaluator."""

    JAVASCRIPT = "javascript"
    GRAALJS = "graaljs"
    VALUE_PARAM = "value-param"


@dataclass(frozen=True, slots=True)
class TaskDetails:
    """``complete_task`` / ``fail_task``: which task, and what its output becomes.

    The task is ``taskId`` when it is set, else the latest iteration of ``taskRefName`` in
    ``workflowId``. Every field may be a template.
    """

    workflow_id: JsonValue = None
    task_ref_name: JsonValue = None
    task_id: JsonValue = None
    output: Mapping[str, JsonValue] = field(default_factory=dict)
    reason_for_incompletion: JsonValue = None


@dataclass(frozen=True, slots=True)
class StartWorkflow:
    """``start_workflow``: ``name`` and ``version`` are literal (as in Conductor); ``input`` and
    ``correlationId`` are templates; ``taskToDomain`` falls back to the payload's."""

    name: str
    version: int | None = None
    correlation_id: JsonValue = None
    input: Mapping[str, JsonValue] = field(default_factory=dict)
    task_to_domain: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class TerminateWorkflow:
    """``terminate_workflow``: both fields may be templates."""

    workflow_id: JsonValue
    termination_reason: JsonValue = None


@dataclass(frozen=True, slots=True)
class UpdateWorkflowVariables:
    """``update_workflow_variables``: ``variables`` is a template map; with ``appendArray``,
    a list value is appended to the variable's current list instead of replacing it."""

    workflow_id: JsonValue
    variables: Mapping[str, JsonValue] = field(default_factory=dict)
    append_array: bool = False


ActionParameters = TaskDetails | StartWorkflow | TerminateWorkflow | UpdateWorkflowVariables


@dataclass(frozen=True, slots=True)
class Action:
    """One action of a handler: its type, its parameters, and ``expandInlineJSON``."""

    action: ActionType
    parameters: ActionParameters
    expand_inline_json: bool = False


@dataclass(frozen=True, slots=True)
class EventHandler:
    """A validated event handler. ``active`` defaults to false, as in Conductor."""

    name: str
    event: str
    actions: tuple[Action, ...]
    condition: str | None = None
    evaluator_type: EvaluatorType = EvaluatorType.JAVASCRIPT
    active: bool = False
    source: str | None = None
    """Where the definition was read from (``FILE`` or ``FILE[index]``), for messages."""
