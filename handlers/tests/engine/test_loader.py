"""Loading handler files: one handler or a list per file, problems located by file,
line:column and JSON path, every problem collected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from conductor_events.config import load_configuration
from conductor_events.plugins import PluginHost
from conductor_events_handlers.loader import (
    EventCheck,
    HandlerDefinitionError,
    event_check,
    load_handlers,
)
from conductor_events_handlers.scripting import ScriptEngine

from .conftest import EVENT, handler

COMPLETE = {
    "action": "complete_task",
    "complete_task": {"workflowId": "${workflowInstanceId}", "taskRefName": "task_1_ref"},
}


@pytest.fixture
def check(host: PluginHost, properties: Path) -> EventCheck:
    return event_check(load_configuration([properties], host, {}), host)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_one_handler_per_file_and_a_list_per_file(
    tmp_path: Path, engine: ScriptEngine, check: EventCheck
) -> None:
    one = write(tmp_path, "one.json", json.dumps(handler([COMPLETE], name="a")))
    many = write(
        tmp_path,
        "many.json",
        json.dumps([handler([COMPLETE], name="b"), handler([COMPLETE], name="c", active=False)]),
    )
    result = load_handlers([one, many], engine, check_event=check)
    assert result.problems == []
    assert [h.name for h in result.handlers] == ["a", "b", "c"]
    assert [h.name for h in result.handlers.for_event(EVENT)] == ["a", "b"]  # c is inactive
    assert result.handlers.events() == [EVENT]


def test_a_directory_stands_for_its_json_files(tmp_path: Path, engine: ScriptEngine) -> None:
    folder = tmp_path / "handlers"
    folder.mkdir()
    write(folder, "b.json", json.dumps(handler([COMPLETE], name="b")))
    write(folder, "a.json", json.dumps(handler([COMPLETE], name="a")))
    write(folder, "notes.txt", "not a handler")
    result = load_handlers([folder], engine)
    assert [h.name for h in result.handlers] == ["a", "b"]


def test_a_file_that_is_not_json_names_file_line_and_column(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    bad = write(tmp_path, "bad.json", '{\n  "name": "x",\n  "event": oops\n}')
    result = load_handlers([bad], engine)
    assert [str(p) for p in result.problems] == [f"{bad}:3:12: not JSON: Expecting value"]
    with pytest.raises(HandlerDefinitionError) as raised:
        result.raise_for_problems()
    assert raised.value.exit_code == 2


def test_problems_carry_the_position_of_the_value(tmp_path: Path, engine: ScriptEngine) -> None:
    text = (
        "[\n"
        '  {"name": "ok", "event": "local:q", "actions": [{"action": "complete_task",\n'
        '   "complete_task": {"taskId": "t"}}]},\n'
        '  {"name": "bad", "event": "local:q",\n'
        '   "actions": [{"action": "finish_task"}]}\n'
        "]"
    )
    path = write(tmp_path, "h.json", text)
    result = load_handlers([path], engine)
    assert [str(p) for p in result.problems] == [
        f"{path}:5:27: [1].actions[0].action: unknown action 'finish_task'; did you mean "
        "'fail_task'? use one of "
        "start_workflow, complete_task, fail_task, terminate_workflow, update_workflow_variables"
    ]
    assert [h.name for h in result.handlers] == ["ok"]


def test_a_condition_with_a_syntax_error_is_rejected_at_load(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    path = write(tmp_path, "h.json", json.dumps(handler([COMPLETE], condition="$.a == (1")))
    result = load_handlers([path], engine)
    assert len(result.problems) == 1
    problem = str(result.problems[0])
    assert problem.startswith(f"{path}:1:")
    assert "condition: the condition does not compile: SyntaxError" in problem
    assert len(result.handlers) == 0


def test_a_template_path_that_cannot_compile_is_rejected(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    action = {
        "action": "complete_task",
        "complete_task": {"taskId": "${ids[}", "output": {"x": "${a"}},
    }
    path = write(tmp_path, "h.json", json.dumps(handler([action])))
    found = [str(p).split(": ", 1)[1] for p in load_handlers([path], engine).problems]
    assert found == [
        "actions[0].complete_task.taskId: invalid path in ${ids[}: unexpected end of query at "
        "the end of 'ids['",
        "actions[0].complete_task.output.x: unclosed '${' at character 1 of '${a' "
        "(write $${ for a literal ${)",
    ]


def test_a_handler_whose_event_names_an_uninstalled_queue_type(
    tmp_path: Path, engine: ScriptEngine, check: EventCheck
) -> None:
    path = write(
        tmp_path, "h.json", json.dumps(handler([COMPLETE], event="sqs:conductor_doug_testing"))
    )
    result = load_handlers([path], engine, check_event=check)
    assert [str(p) for p in result.problems] == [
        f"{path}:1:25: event: this event cannot be consumed here: sink "
        "'sqs:conductor_doug_testing': unknown queue type 'sqs'; install conductor-events-sqs "
        "(pip install 'conductor-events[sqs]')"
    ]


def test_a_disabled_queue_type_and_a_conductor_event(
    tmp_path: Path, engine: ScriptEngine, host: PluginHost
) -> None:
    config_file = write(tmp_path, "off.properties", "conductor.event-queues.local.enabled=false\n")
    check = event_check(load_configuration([config_file], host, {}), host)
    path = write(
        tmp_path,
        "h.json",
        json.dumps(
            [
                handler([COMPLETE], name="a", event="local:q"),
                handler([COMPLETE], name="b", event="conductor:wf:ref"),
            ]
        ),
    )
    found = [str(p) for p in load_handlers([path], engine, check_event=check).problems]
    assert len(found) == 2
    assert "set conductor.event-queues.local.enabled=true" in found[0]
    assert "belongs to the Conductor server's internal queue" in found[1]


def test_duplicate_names_point_at_the_first_definition(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    first = write(tmp_path, "a.json", json.dumps(handler([COMPLETE], name="same")))
    second = write(tmp_path, "b.json", json.dumps(handler([COMPLETE], name="same")))
    result = load_handlers([first, second], engine)
    assert [str(p) for p in result.problems] == [
        f"{second}:1:10: name: handler name 'same' is already defined at {first}:1:10"
    ]
    assert len(result.handlers) == 1


def test_missing_files_and_every_problem_of_every_file(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    bad = write(tmp_path, "bad.json", "[1, {}]")
    result = load_handlers([tmp_path / "nope.json", bad], engine)
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'nope.json'}: no such file or directory",
        f"{bad}:1:2: [0]: an event handler must be a JSON object, not a number",
        f"{bad}:1:5: [1]: Missing event handler name",
        f"{bad}:1:5: [1]: Missing event location",
        f"{bad}:1:5: [1]: No actions specified. Please specify at-least one action",
    ]


def test_an_unknown_field_does_not_hide_the_templates_and_condition(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    action = {
        "action": "complete_task",
        "complete_task": {"taskId": "${a", "output": {"x": "${b[}", "y": "${c"}},
    }
    raw = handler([action], condition="$.a == (1")
    raw["conditon"] = "true"
    raw["evaluatorType"] = "javascript"
    path = write(tmp_path, "h.json", json.dumps(raw, indent=2))
    result = load_handlers([path], engine)
    found = [str(p).split(": ", 1)[1] for p in result.problems]
    assert [line.split(":")[0] for line in found] == [  # in reading order
        "actions[0].complete_task.taskId",
        "actions[0].complete_task.output.x",
        "actions[0].complete_task.output.y",
        "condition",
        "conditon",
    ]
    assert "unclosed '${' at character 1 of '${a'" in found[0]
    assert "the condition does not compile: SyntaxError" in found[3]
    assert found[4] == "conditon: unknown field 'conditon'; did you mean 'condition'?"
    assert len(result.handlers) == 0


def test_every_bad_expression_in_one_value_is_named(tmp_path: Path, engine: ScriptEngine) -> None:
    action = {
        "action": "start_workflow",
        "start_workflow": {"name": "wf", "input": {"order": {"id": "${a[}", "items": ["${b"]}}},
    }
    path = write(tmp_path, "h.json", json.dumps(handler([action])))
    found = [str(p).split(": ", 1)[1] for p in load_handlers([path], engine).problems]
    assert found == [
        "actions[0].start_workflow.input.order: invalid path in ${a[}: unexpected end of query "
        "at the end of 'a[' in ['id']; unclosed '${' at character 1 of '${b' "
        "(write $${ for a literal ${) in ['items'][0]"
    ]


def test_an_unknown_field_in_an_action_is_a_warning_and_the_handler_loads(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    params = {"workflowId": "${workflowInstanceId}", "taskRefName": "t", "input": {"a": 1}}
    action = {"action": "complete_task", "complete_task": params}
    path = write(tmp_path, "h.json", json.dumps(handler([action]), indent=2))
    with capture_logs() as logs:
        result = load_handlers([path], engine)
    assert result.problems == []
    assert [h.name for h in result.handlers] == ["h1"]
    assert [str(w) for w in result.warnings] == [
        f"{path}:10:18: actions[0].complete_task.input: warning: unknown field 'input' is "
        "ignored, as Conductor ignores it"
    ]
    assert result.findings == result.warnings
    assert [entry for entry in logs if entry["event"] == "handlers.definition.warning"] == [
        {
            "event": "handlers.definition.warning",
            "log_level": "warning",
            "location": f"{path}:10:18",
            "field": "actions[0].complete_task.input",
            "problem": "unknown field 'input' is ignored, as Conductor ignores it",
        }
    ]
    with capture_logs() as quiet:
        load_handlers([path], engine, log_warnings=False)
    assert quiet == []


def test_a_name_used_twice_is_reported_even_when_the_first_has_problems(
    tmp_path: Path, engine: ScriptEngine
) -> None:
    broken = {**handler([{"action": "finish_task"}], name="same")}
    path = write(tmp_path, "h.json", json.dumps([broken, handler([COMPLETE], name="same")]))
    found = [str(p).split(": ", 1)[1] for p in load_handlers([path], engine).problems]
    assert found[-1].startswith("[1].name: handler name 'same' is already defined at ")
