"""Handler conditions: ``javascript`` (the default) and ``value-param``, as Conductor has them.

* No condition, or an empty one: the handler matches every message.
* ``javascript`` (also ``graaljs``): a script with ``$`` bound to the expanded payload, run in
  the embedded engine (:mod:`~conductor_events_handlers.scripting`).
* ``value-param``: the condition is a key; the result is the payload's value for it (the
  payload must be an object).

A result is true as Conductor's ``ScriptEvaluator.toBoolean`` decides: a boolean is itself, a
number is true when greater than 0, anything else is false. Conditions always see the payload
with inline JSON expanded (:mod:`~conductor_events_handlers.inline_json`).

A condition that throws, runs too long or uses too much memory is a :class:`ConditionFailure`
for that message: never an exception that escapes to the consumer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conductor_events_handlers.inline_json import expand
from conductor_events_handlers.model import EvaluatorType
from conductor_events_handlers.scripting import (
    Runtime,
    Script,
    ScriptEngine,
    ScriptError,
    ScriptRunner,
    evaluate_on,
)

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_NOT_YET: Any = object()


@dataclass(frozen=True, slots=True)
class ConditionFailure:
    """Why a condition could not be evaluated for a message."""

    message: str


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition. ``script`` is set for JavaScript, ``key`` for value-param; a
    condition with neither matches everything."""

    source: str | None = None
    evaluator: EvaluatorType = EvaluatorType.JAVASCRIPT
    script: Script | None = None
    key: str | None = None

    @property
    def always(self) -> bool:
        return self.script is None and self.key is None


ALWAYS = Condition()


def to_boolean(value: Any) -> bool:
    """Conductor's ``ScriptEvaluator.toBoolean``: booleans as they are, numbers ``> 0``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0
    return False


def compile_condition(
    source: str | None, evaluator: EvaluatorType, engine: ScriptEngine
) -> Condition:
    """Compile a handler's condition.

    Raises:
        ScriptError: a JavaScript syntax error.
    """
    if not source:
        return ALWAYS
    if evaluator is EvaluatorType.VALUE_PARAM:
        return Condition(source, evaluator, key=source)
    return Condition(source, evaluator, script=engine.compile(source))


Result = bool | ConditionFailure


class ConditionEvaluator:
    """Evaluates the conditions of the handlers a message reaches, with one hop to an engine's
    thread per message.

    Args:
        engine: one engine, or a pool of them
            (:class:`~conductor_events_handlers.engines.EnginePool`).
    """

    def __init__(self, engine: ScriptRunner) -> None:
        self.engine = engine

    async def evaluate(
        self, conditions: Sequence[Condition], payload: Any, *, key: str | None = None
    ) -> list[Result]:
        """Each condition's verdict on ``payload``, in order. ``key`` (the message's event)
        is what keeps one event's conditions from taking every engine of a pool."""
        if all(c.always for c in conditions):
            return [True] * len(conditions)
        scripts = [c.script for c in conditions if c.script is not None]
        verdicts: list[bool | ScriptError] = []
        if scripts:
            text = _encode(payload)  # the engine expands inline JSON as it parses
            verdicts = await self.engine.run(lambda runtime: _run_all(runtime, scripts, text), key)
        return _combine(conditions, verdicts, payload)

    def evaluate_sync(self, conditions: Sequence[Condition], payload: Any) -> list[Result]:
        """:meth:`evaluate` for callers with no event loop (benchmarks, tools); blocking."""
        scripts = [c.script for c in conditions if c.script is not None]
        text = _encode(payload)
        verdicts = self.engine.submit(lambda runtime: _run_all(runtime, scripts, text))
        return _combine(conditions, verdicts, payload)


def _run_all(
    runtime: Runtime, scripts: list[Script], payload_json: str
) -> list[bool | ScriptError]:
    return [evaluate_on(runtime, script, payload_json) for script in scripts]


def _combine(
    conditions: Sequence[Condition], verdicts: list[bool | ScriptError], payload: Any
) -> list[Result]:
    results: list[Result] = []
    scripted = iter(verdicts)
    expanded: Any = _NOT_YET
    for condition in conditions:
        if condition.script is not None:
            verdict = next(scripted)
            if isinstance(verdict, ScriptError):
                results.append(ConditionFailure(f"condition failed: {verdict.message}"))
            else:
                results.append(verdict)
        elif condition.key is not None:
            if expanded is _NOT_YET:
                expanded = expand(payload)
            results.append(_value_param(condition.key, expanded))
        else:
            results.append(True)
    return results


def _value_param(key: str, payload: Any) -> Result:
    if not isinstance(payload, dict):
        return ConditionFailure(
            f"value-param condition {key!r} needs a JSON object payload, "
            f"got {type(payload).__name__}"
        )
    return to_boolean(payload.get(key))
