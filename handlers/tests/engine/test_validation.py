"""Handler definitions: Conductor's three messages, and the checks Conductor does not make."""

from __future__ import annotations

from typing import Any

import pytest

from conductor_events_handlers.model import ActionType, EvaluatorType, StartWorkflow, TaskDetails
from conductor_events_handlers.validation import (
    MISSING_ACTIONS,
    MISSING_EVENT,
    MISSING_NAME,
    build_handler,
)

COMPLETE = {"action": "complete_task", "complete_task": {"taskId": "${taskId}"}}


def problems(raw: Any) -> list[str]:
    return [str(p) for p in build_handler(raw)[1]]


def test_conductor_messages_for_an_empty_handler() -> None:
    # EventHandlerTest: the three bean-validation messages.
    assert problems({}) == [
        f"(document): {MISSING_NAME}",
        f"(document): {MISSING_EVENT}",
        f"(document): {MISSING_ACTIONS}",
    ]


def test_empty_strings_and_empty_actions_get_the_same_messages() -> None:
    found = problems({"name": "", "event": "", "actions": []})
    assert found == [
        f"name: {MISSING_NAME}",
        f"event: {MISSING_EVENT}",
        f"actions: {MISSING_ACTIONS}",
    ]


def test_a_valid_handler_builds_with_conductor_defaults() -> None:
    handler, found = build_handler({"name": "n", "event": "local:q", "actions": [COMPLETE]})
    assert found == []
    assert handler is not None
    assert handler.active is False  # Conductor's default
    assert handler.evaluator_type is EvaluatorType.JAVASCRIPT
    assert handler.actions[0].action is ActionType.COMPLETE_TASK
    assert isinstance(handler.actions[0].parameters, TaskDetails)
    assert handler.actions[0].expand_inline_json is False


def test_unknown_action_names_the_choices_and_a_close_match() -> None:
    found = problems({"name": "n", "event": "local:q", "actions": [{"action": "complete_tsk"}]})
    assert found == [
        "actions[0].action: unknown action 'complete_tsk'; did you mean 'complete_task'? use one "
        "of start_workflow, complete_task, fail_task, terminate_workflow, update_workflow_variables"
    ]


def test_start_agent_is_refused_as_unsupported() -> None:
    found = problems({"name": "n", "event": "local:q", "actions": [{"action": "start_agent"}]})
    assert found == [
        "actions[0].action: start_agent (Conductor's agent runtime) is not supported here"
    ]


def test_unknown_evaluator_type_is_refused_not_silently_javascript() -> None:
    found = problems(
        {"name": "n", "event": "local:q", "evaluatorType": "jq", "actions": [COMPLETE]}
    )
    assert len(found) == 1
    assert found[0].startswith("evaluatorType: unknown evaluatorType 'jq'")
    assert "silently" in found[0]


@pytest.mark.parametrize("evaluator", ["javascript", "graaljs", "value-param"])
def test_known_evaluator_types(evaluator: str) -> None:
    handler, found = build_handler(
        {"name": "n", "event": "local:q", "evaluatorType": evaluator, "actions": [COMPLETE]}
    )
    assert found == []
    assert handler is not None
    assert handler.evaluator_type.value == evaluator


def test_misspelled_field_is_reported_with_a_suggestion() -> None:
    found = problems({"name": "n", "event": "local:q", "conditon": "false", "actions": [COMPLETE]})
    assert found == ["conditon: unknown field 'conditon'; did you mean 'condition'?"]


def test_unknown_fields_inside_an_action_are_warnings_as_conductor_ignores_them() -> None:
    # The Conductor docs' shape: ``input`` next to workflowId, taskRefName and output.
    complete = {
        "action": "complete_task",
        "complete_task": {
            "workflowId": "${workflowInstanceId}",
            "taskRefName": "task_1_ref",
            "input": {"a": "${a}"},
            "outputs": {},
            "output": {"received": "${myNumber}"},
        },
        "retries": 3,
        "expandInlineJSON": False,
    }
    handler, found = build_handler({"name": "n", "event": "local:q", "actions": [complete]})
    assert [str(p) for p in found] == [
        "actions[0].retries: warning: unknown field 'retries' is ignored, as Conductor ignores it",
        "actions[0].complete_task.input: warning: unknown field 'input' is ignored, "
        "as Conductor ignores it",
        "actions[0].complete_task.outputs: warning: unknown field 'outputs' is ignored, "
        "as Conductor ignores it; did you mean 'output'?",
    ]
    assert all(p.warning for p in found)
    assert handler is not None
    params = handler.actions[0].parameters
    assert params == TaskDetails(
        "${workflowInstanceId}", "task_1_ref", None, {"received": "${myNumber}"}
    )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("fail_task", {"taskId": "t", "extra": 1}),
        ("start_workflow", {"name": "wf", "extra": 1}),
        ("terminate_workflow", {"workflowId": "w", "extra": 1}),
        ("update_workflow_variables", {"workflowId": "w", "variables": {}, "extra": 1}),
    ],
)
def test_every_action_type_only_warns_about_unknown_parameters(
    kind: str, params: dict[str, Any]
) -> None:
    handler, found = build_handler(
        {"name": "n", "event": "local:q", "actions": [{"action": kind, kind: params}]}
    )
    assert [(str(p), p.warning) for p in found] == [
        (f"actions[0].{kind}.extra: warning: unknown field 'extra' is ignored, "
         "as Conductor ignores it", True)
    ]  # fmt: skip
    assert handler is not None


def test_a_warning_does_not_hide_an_error_beside_it() -> None:
    action = {"action": "complete_task", "complete_task": {"workflowId": "w", "input": {}}}
    handler, found = build_handler({"name": "n", "event": "local:q", "actions": [action]})
    assert handler is None
    assert [(str(p), p.warning) for p in found] == [
        ("actions[0].complete_task.input: warning: unknown field 'input' is ignored, "
         "as Conductor ignores it", True),
        ("actions[0].complete_task: complete_task needs taskId, or workflowId and taskRefName",
         False),
    ]  # fmt: skip


def test_conductor_metadata_fields_are_accepted() -> None:
    raw = {
        "name": "n",
        "event": "local:q",
        "actions": [COMPLETE],
        "createdBy": "me",
        "description": "d",
    }
    assert problems(raw) == []


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            {"action": "complete_task"},
            "actions[0]: a complete_task action needs a 'complete_task' object with its parameters",
        ),
        (
            {"action": "fail_task", "fail_task": {"workflowId": "w"}},
            "actions[0].fail_task: fail_task needs taskId, or workflowId and taskRefName",
        ),
        (
            {"action": "start_workflow", "start_workflow": {}},
            "actions[0].start_workflow: start_workflow needs a name",
        ),
        (
            {"action": "terminate_workflow", "terminate_workflow": {}},
            "actions[0].terminate_workflow: terminate_workflow needs a workflowId",
        ),
        (
            {
                "action": "update_workflow_variables",
                "update_workflow_variables": {"workflowId": "w"},
            },
            "actions[0].update_workflow_variables: "
            "update_workflow_variables needs a variables object",
        ),
        (
            {"action": "complete_task", "complete_task": "x"},
            "actions[0].complete_task: complete_task must be an object, not a string",
        ),
        (
            {"action": "start_workflow", "start_workflow": {"name": "w", "version": "1"}},
            "actions[0].start_workflow.version: version must be a whole number, not a string",
        ),
        (
            {"action": "start_workflow", "start_workflow": {"name": "${wf}"}},
            "actions[0].start_workflow.name: "
            "the workflow name is used as written, not templated (as in Conductor)",
        ),
        (
            {**COMPLETE, "expandInlineJSON": "yes"},
            "actions[0].expandInlineJSON: expandInlineJSON must be true or false, not a string",
        ),
        (
            {**COMPLETE, "start_workflow": {"name": "w"}},
            "actions[0].start_workflow: start_workflow is ignored by a complete_task action",
        ),
        ("complete_task", "actions[0]: an action must be a JSON object, not a string"),
    ],
)
def test_each_action_must_carry_its_fields(action: Any, expected: str) -> None:
    assert problems({"name": "n", "event": "local:q", "actions": [action]}) == [expected]


def test_types_of_handler_fields() -> None:
    found = problems({"name": 3, "event": "local:q", "active": "true", "actions": {}})
    assert found == [
        "name: name must be a string, not a number",
        f"name: {MISSING_NAME}",
        "active: active must be true or false, not a string",
        "actions: actions must be a list, not an object",
    ]


def test_start_workflow_parameters() -> None:
    handler, found = build_handler(
        {
            "name": "n",
            "event": "local:q",
            "actions": [
                {
                    "action": "start_workflow",
                    "start_workflow": {
                        "name": "wf",
                        "version": 2,
                        "correlationId": "${id}",
                        "input": {"a": "${a}"},
                        "taskToDomain": {"*": "dev"},
                    },
                }
            ],
        }
    )
    assert found == []
    assert handler is not None
    params = handler.actions[0].parameters
    assert params == StartWorkflow("wf", 2, "${id}", {"a": "${a}"}, {"*": "dev"})


def test_a_handler_that_is_not_an_object() -> None:
    assert problems(["x"]) == ["(document): an event handler must be a JSON object, not a list"]
