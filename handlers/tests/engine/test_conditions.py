"""Conditions: JavaScript in the embedded engine (truthiness, inline JSON, limits) and
value-param, as Conductor evaluates them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conductor_events_handlers.conditions import (
    ConditionEvaluator,
    ConditionFailure,
    compile_condition,
    to_boolean,
)
from conductor_events_handlers.model import EvaluatorType
from conductor_events_handlers.scripting import ScriptEngine, ScriptError, ScriptFailure

SNS = {
    "Type": "Notification",
    "MessageId": "7e0ba2e2",
    "Message": json.dumps({"testKey1": "level1", "metadata": {"testKey2": 123456}}),
}
SNS_CONDITION = "$.Message.testKey1 == 'level1' && $.Message.metadata.testKey2 == 123456"


async def verdict(
    engine: ScriptEngine, source: str, payload: Any, evaluator: str = "javascript"
) -> Any:
    condition = compile_condition(source, EvaluatorType(evaluator), engine)
    return (await ConditionEvaluator(engine).evaluate([condition], payload))[0]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true", True),
        ("false", False),
        ("1", True),
        ("0.5", True),
        ("0", False),
        ("-1", False),
        ("'yes'", False),  # only booleans and numbers count, as ScriptEvaluator.toBoolean
        ("null", False),
        ("undefined", False),
        ("({a: 1})", False),
        ("[1]", False),
        ("$.a == 1", True),
        ("$.list.length > 1", True),
        ("$.list.indexOf('y') >= 0", True),
        ("$.nested.x === null", True),
        ("$.missing == undefined", True),
        ("var n = $.a + 1;\nn == 2", True),  # a program: its completion value counts
        ("function f() { return $.a > 0; } f();", True),
        ("$.a == 1 // trailing comment", True),
    ],
)
async def test_javascript_truthiness(engine: ScriptEngine, source: str, expected: bool) -> None:
    payload = {"a": 1, "list": ["x", "y"], "nested": {"x": None}}
    assert await verdict(engine, source, payload) is expected


async def test_sns_message_in_sqs_is_expanded_for_the_condition(engine: ScriptEngine) -> None:
    assert await verdict(engine, SNS_CONDITION, SNS) is True
    other = {**SNS, "Message": json.dumps({"testKey1": "level2"})}
    assert await verdict(engine, SNS_CONDITION, other) is False


async def test_an_empty_condition_matches_everything(engine: ScriptEngine) -> None:
    assert compile_condition("", EvaluatorType.JAVASCRIPT, engine).always
    assert compile_condition(None, EvaluatorType.JAVASCRIPT, engine).always
    assert await verdict(engine, "", "not even json") is True


async def test_a_condition_cannot_change_what_the_next_one_sees(engine: ScriptEngine) -> None:
    conditions = [
        compile_condition("$.a = 5; true", EvaluatorType.JAVASCRIPT, engine),
        compile_condition("$.a == 1", EvaluatorType.JAVASCRIPT, engine),
    ]
    assert await ConditionEvaluator(engine).evaluate(conditions, {"a": 1}) == [True, True]


async def test_value_param(engine: ScriptEngine) -> None:
    assert await verdict(engine, "approved", {"approved": True}, "value-param") is True
    assert await verdict(engine, "approved", {"approved": 0}, "value-param") is False
    assert await verdict(engine, "count", {"count": 3}, "value-param") is True
    assert await verdict(engine, "missing", {"approved": True}, "value-param") is False
    failure = await verdict(engine, "approved", "plain text", "value-param")
    assert isinstance(failure, ConditionFailure)
    assert "needs a JSON object payload" in failure.message


async def test_a_payload_that_is_not_json_is_a_string_for_the_condition(
    engine: ScriptEngine,
) -> None:
    assert (
        await verdict(engine, "typeof $ === 'string' && $.indexOf('hello') == 0", "hello there")
        is True
    )
    failure = await verdict(engine, "$.a.b == 1", "hello there")
    assert isinstance(failure, ConditionFailure)
    assert failure.message.startswith("condition failed: TypeError")


async def test_a_condition_that_throws(engine: ScriptEngine) -> None:
    failure = await verdict(engine, "throw new Error('boom')", {})
    assert failure == ConditionFailure("condition failed: Error: boom")


async def test_an_endless_condition_times_out_and_the_engine_recovers(engine: ScriptEngine) -> None:
    failure = await verdict(engine, "while(true){}", {})
    assert failure == ConditionFailure(
        "condition failed: condition ran longer than 0.3s and was stopped"
    )
    assert await verdict(engine, "$.a == 1", {"a": 1}) is True


async def test_a_condition_that_allocates_too_much_is_stopped(engine: ScriptEngine) -> None:
    failure = await verdict(engine, "var a = []; while (true) { a.push('x'.repeat(1000)); }", {})
    assert isinstance(failure, ConditionFailure)
    assert "memory limit" in failure.message
    assert await verdict(engine, "$.a == 1", {"a": 1}) is True


async def test_deep_recursion_is_an_error_not_a_crash(engine: ScriptEngine) -> None:
    failure = await verdict(engine, "function r(n) { return r(n + 1); } r(0)", {})
    assert failure == ConditionFailure("condition failed: stack overflow")


def test_a_syntax_error_is_raised_at_compile_time(engine: ScriptEngine) -> None:
    with pytest.raises(ScriptError) as raised:
        compile_condition("$.a == (1", EvaluatorType.JAVASCRIPT, engine)
    assert raised.value.kind is ScriptFailure.SYNTAX
    assert raised.value.message.startswith("SyntaxError")


def test_the_engine_has_no_host_access(engine: ScriptEngine) -> None:
    for source in (
        "typeof require == 'undefined'",
        "typeof std == 'undefined'",
        "typeof os == 'undefined'",
        "typeof fetch == 'undefined'",
    ):
        script = engine.compile(source)
        assert engine.evaluate(script, "{}") is True


def test_to_boolean() -> None:
    assert to_boolean(True)
    assert to_boolean(2)
    assert to_boolean(0.1)
    assert not (to_boolean(False))
    assert not (to_boolean(0))
    assert not (to_boolean("true"))
    assert not (to_boolean(None))


def test_sync_evaluation_for_tools(engine: ScriptEngine) -> None:
    condition = compile_condition(SNS_CONDITION, EvaluatorType.JAVASCRIPT, engine)
    assert ConditionEvaluator(engine).evaluate_sync([condition], SNS) == [True]


async def test_memory_a_condition_tries_to_keep_in_globals_is_not_kept(
    engine: ScriptEngine,
) -> None:
    # The global object is frozen: `g = []` creates nothing, each call starts with nothing,
    # runs out of memory on its own, and the context replaced after it works on.
    hoarder = (
        "g = (typeof g === 'undefined') ? [] : g;"
        " var a = (typeof g === 'undefined') ? [] : g; while (true) { a.push('y'.repeat(1000)); }"
    )
    for _ in range(3):
        failure = await verdict(engine, hoarder, {})
        assert isinstance(failure, ConditionFailure)
        assert "memory limit" in failure.message
        assert await verdict(engine, "typeof g === 'undefined' && $.a == 1", {"a": 1}) is True


async def test_many_failures_in_a_row_leave_the_engine_working(engine: ScriptEngine) -> None:
    # Out of memory, time-outs and stack overflows interleaved: the engine survives them all.
    sources = [
        "var a = []; while (true) { a.push('x'.repeat(1000)); }",
        "while (true) {}",
        "function r(n) { return r(n + 1); } r(0)",
    ]
    conditions = [compile_condition(s, EvaluatorType.JAVASCRIPT, engine) for s in sources]
    evaluator = ConditionEvaluator(engine)
    for _ in range(3):
        results = await evaluator.evaluate(conditions, {})
        assert all(isinstance(r, ConditionFailure) for r in results)
    assert await verdict(engine, "$.ok", {"ok": True}) is True
