"""Conditions cannot change what other conditions see: the built-ins and the global object are
frozen before any condition runs, and the wrapper keeps its own ``JSON.parse``.

Each case evaluates handler A's condition (which tries to change the shared world) and then
handler B's, in one batch as the processor does, and B again on its own: B's verdict must be
the one it has in a pristine engine. All on the real QuickJS engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from conductor_events_handlers.conditions import (
    ConditionEvaluator,
    ConditionFailure,
    compile_condition,
)
from conductor_events_handlers.model import EvaluatorType
from conductor_events_handlers.scripting import ScriptEngine

JS = EvaluatorType.JAVASCRIPT

# (what A does, B's condition, the payload, B's verdict in a pristine engine)
ATTACKS: list[tuple[str, str, Any, bool]] = [
    ("Object.prototype.approved = true; true", "$.approved === true", {}, False),
    ("Object.prototype.approved = true", "$.approved === true", {}, False),
    (
        "Object.defineProperty(Object.prototype, 'approved', {get: function () { return true; }})",
        "$.approved === true",
        {},
        False,
    ),
    ("Object.setPrototypeOf(Object.prototype, {approved: true}); true", "!!$.approved", {}, False),
    ("({}).__proto__.approved = 1; true", "$.approved > 0", {}, False),
    (
        "Array.prototype.includes = function () { return true; }; true",
        "$.tags.includes('vip')",
        {"tags": []},
        False,
    ),
    ("Array.prototype.approved = true; true", "$.tags.approved === true", {"tags": []}, False),
    (
        "String.prototype.startsWith = function () { return true; }; true",
        "$.name.startsWith('admin')",
        {"name": "guest"},
        False,
    ),
    ("String.prototype.approved = true; true", "$.name.approved === true", {"name": "x"}, False),
    (
        "Object.getPrototypeOf([][Symbol.iterator]()).next = function () {"
        " return {done: true}; }; true",
        "var n = 0; for (var x of $.items) { n++; } n == 2",
        {"items": [1, 2]},
        True,
    ),
    (
        "Function.prototype.call = function () { return true; }; true",
        "Object.prototype.hasOwnProperty.call($, 'approved')",
        {},
        False,
    ),
    (
        "globalThis.Math = {max: function () { return 100; }}; true",
        "Math.max($.a, $.b) > 5",
        {"a": 1, "b": 2},
        False,
    ),
    ("Math.max = function () { return 100; }; true", "Math.max($.a, $.b) > 5", {"a": 1}, False),
    ("globalThis.undefined = true; true", "$.missing === undefined", {}, True),
    ("undefined = true; true", "$.missing === undefined", {}, True),
    ("NaN = 1; true", "isNaN(NaN)", {}, True),
    ("globalThis.approved = true; true", "typeof approved === 'undefined'", {}, True),
    ("approved = true; true", "typeof approved === 'undefined'", {}, True),
    ("var approved = true; true", "typeof approved === 'undefined'", {}, True),
    (
        "Object.freeze = function (o) { return o; }; true",
        "Object.isFrozen(Object.freeze({}))",
        {},
        True,
    ),
    (
        "JSON.parse = function () { return {approved: true}; }; true",
        "$.approved === true",
        {},
        False,
    ),
    (
        "JSON.parse = function () { return {approved: true}; }; true",
        "var ok = $.approved === true; ok",
        {},
        False,
    ),
    (
        "globalThis.JSON = {parse: function () { return {approved: true}; }}; true",
        "$.approved === true",
        {},
        False,
    ),
    (
        "JSON.parse = function () { return {approved: true}; }; true",
        "JSON.parse('{}').approved === true",
        {},
        False,
    ),
    (
        "'use strict'; Object.prototype.approved = true; true",
        "$.approved === true",
        {},
        False,
    ),
]


async def verdicts(engine: ScriptEngine, sources: list[str], payload: Any) -> list[Any]:
    conditions = [compile_condition(source, JS, engine) for source in sources]
    return await ConditionEvaluator(engine).evaluate(conditions, payload)


@pytest.mark.parametrize(("attack", "condition", "payload", "pristine"), ATTACKS)
async def test_one_condition_cannot_change_what_another_sees(
    engine: ScriptEngine, attack: str, condition: str, payload: Any, pristine: bool
) -> None:
    assert await verdicts(engine, [condition], payload) == [pristine]
    _, after = await verdicts(engine, [attack, condition], payload)
    assert after is pristine
    assert await verdicts(engine, [condition], payload) == [pristine]


async def test_a_condition_cannot_replace_its_own_parser(engine: ScriptEngine) -> None:
    # The wrapper's reference to JSON.parse and its reviver are constants of its closure.
    source = (
        "try { __parse = function () { return {approved: true}; }; } catch (e) {}"
        " try { __expand = null; } catch (e) {} $.approved === true"
    )
    for _ in range(2):
        assert await verdicts(engine, [source], {"approved": False}) == [False]


async def test_statement_conditions_keep_their_own_variables(engine: ScriptEngine) -> None:
    sources = [
        "var total = 0; for (var i = 0; i < $.items.length; i++) { total += $.items[i].qty; }"
        " total > 2",
        "function sum(items) { var t = 0; items.forEach(function (x) { t += x.qty; }); return t; }"
        " sum($.items) == 3",
        "let n = $.items.length; const limit = 1; n > limit",
        "var seen = {}; $.items.forEach(function (x) { seen[x.sku] = true; }); seen.a && seen.b",
        "var o = {toString: 5}; o.toString === 5",
    ]
    payload = {"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}
    for _ in range(2):  # and again: nothing of the first run is left over
        assert await verdicts(engine, sources, payload) == [True] * len(sources)


async def test_built_ins_still_work_when_frozen(engine: ScriptEngine) -> None:
    sources = [
        "[3, 1, 2].sort().join() == '1,2,3'",
        "new Date(0).toISOString() == '1970-01-01T00:00:00.000Z'",
        "/a(b)/.exec('xab')[1] == 'b'",
        "new Map([[1, 2]]).get(1) == 2",
        "Object.keys($).length == 1",
        "JSON.stringify($) == '{\"a\":1}'",
        "Math.max(1, 2) == 2",
        "[...'ab'].length == 2",
        "Array.from(new Set([1, 1, 2])).length == 2",
    ]
    assert await verdicts(engine, sources, {"a": 1}) == [True] * len(sources)


async def test_a_context_replaced_after_running_out_of_memory_is_frozen_too(
    engine: ScriptEngine,
) -> None:
    hog = "var a = []; while (true) { a.push('x'.repeat(1000)); }"
    attack = "Object.prototype.approved = true; true"
    results = await verdicts(engine, [hog, attack, "$.approved === true"], {})
    assert isinstance(results[0], ConditionFailure)
    assert "memory limit" in results[0].message
    assert results[1:] == [True, False]


async def test_an_undeclared_assignment_creates_no_global(engine: ScriptEngine) -> None:
    # As documented: the global object is frozen, so `x = 1` is ignored and reading x fails.
    [failure] = await verdicts(engine, ["x = 1; x == 1"], {})
    assert failure == ConditionFailure("condition failed: ReferenceError: x is not defined")
