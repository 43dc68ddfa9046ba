"""The engine pool: one event's runaway conditions leave an engine for the other events, and a
caller that goes away never takes an engine with it. Real QuickJS engines throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from conductor_events_handlers.conditions import (
    Condition,
    ConditionEvaluator,
    ConditionFailure,
    compile_condition,
)
from conductor_events_handlers.engines import EnginePool, default_size
from conductor_events_handlers.model import EvaluatorType
from conductor_events_handlers.scripting import ScriptEngine
from tests.serve.conftest import eventually

JS = EvaluatorType.JAVASCRIPT


@pytest.fixture
def pool() -> Iterator[EnginePool]:
    engines = EnginePool(timeout=0.3, memory_limit=16 << 20, size=2)
    yield engines
    engines.close()


def runaway(engine: ScriptEngine) -> Condition:
    return compile_condition("while (true) {}", JS, engine)


async def test_one_events_runaway_conditions_leave_an_engine_for_another(
    pool: EnginePool, engine: ScriptEngine
) -> None:
    evaluator = ConditionEvaluator(pool)
    endless = runaway(engine)
    quick = compile_condition("$.n > 0", JS, engine)
    stuck = [
        asyncio.create_task(evaluator.evaluate([endless], {}, key="local:a")) for _ in range(4)
    ]
    await eventually(lambda: pool.busy("local:a") == 1, what="event a to hold an engine")
    for n in range(1, 4):
        assert await evaluator.evaluate([quick], {"n": n}, key="local:b") == [True]
        assert pool.busy("local:a") == 1  # never both engines
    # b did not wait in line behind a's four runaway batches (0.3 s each, one at a time)
    assert sum(task.done() for task in stuck) <= 1
    for result in await asyncio.gather(*stuck):
        assert isinstance(result[0], ConditionFailure)
        assert "ran longer than 0.3s" in result[0].message
    assert pool.busy("local:a") == 0


async def test_work_of_one_event_runs_one_batch_at_a_time_and_all_of_it(
    pool: EnginePool, engine: ScriptEngine
) -> None:
    evaluator = ConditionEvaluator(pool)
    quick = compile_condition("$.n >= 0", JS, engine)
    results = await asyncio.gather(
        *(evaluator.evaluate([quick], {"n": n}, key="local:a") for n in range(50))
    )
    assert results == [[True]] * 50
    assert pool.busy("local:a") == 0


async def test_a_cancelled_caller_does_not_keep_an_engine(
    pool: EnginePool, engine: ScriptEngine
) -> None:
    evaluator = ConditionEvaluator(pool)
    endless = runaway(engine)
    quick = compile_condition("$.n == 1", JS, engine)
    running = asyncio.create_task(evaluator.evaluate([endless], {}, key="local:a"))
    await eventually(lambda: pool.busy("local:a") == 1, what="event a to hold an engine")
    waiting = [
        asyncio.create_task(evaluator.evaluate([endless], {}, key="local:a")) for _ in range(3)
    ]
    await asyncio.sleep(0)
    for task in [running, *waiting]:
        task.cancel()
    await asyncio.gather(running, *waiting, return_exceptions=True)
    # The running condition goes on until its timeout; then its engine is free again, and
    # none was handed to the cancelled callers.
    await eventually(lambda: pool.busy("local:a") == 0, what="the engine to come back")
    assert await evaluator.evaluate([quick], {"n": 1}, key="local:a") == [True]
    assert await evaluator.evaluate([quick], {"n": 1}, key="local:b") == [True]


async def test_a_pool_of_one_is_shared_by_every_event(engine: ScriptEngine) -> None:
    single = EnginePool(timeout=0.3, memory_limit=16 << 20, size=1)
    try:
        evaluator = ConditionEvaluator(single)
        quick = compile_condition("$.n == 1", JS, engine)
        assert await evaluator.evaluate([quick], {"n": 1}, key="local:a") == [True]
        assert await evaluator.evaluate([quick], {"n": 1}, key="local:b") == [True]
        assert single.per_key == 1
    finally:
        single.close()


def test_the_default_size_is_one_per_core_and_at_least_two() -> None:
    assert default_size() >= 2
    with pytest.raises(ValueError, match="at least one engine"):
        EnginePool(size=-1)
