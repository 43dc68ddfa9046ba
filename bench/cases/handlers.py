"""Event handlers: condition evaluation, ``${...}`` substitution, and the whole pipeline.

* ``handlers/condition``: a typical condition, ``$.workflowType == 'doug' && $.myKey ==
  'myValue'``, on what an EVENT task publishes (its inputs and system fields): per message,
  the payload encoded, then parsed in the embedded engine with inline JSON expanded, and the
  compiled condition called. The batch runs on the engine's thread, as the processor hands it
  one batch per message. Target: at least 100,000 evaluations/s.
* ``handlers/condition-sns``: the condition of Conductor's tests,
  ``$.Message.testKey1 == 'level1' && $.Message.metadata.testKey2 == 123456``, on an SNS
  notification delivered through SQS, whose ``Message`` is a JSON string the expansion has to
  parse: the heavy case, measured the same way, with the same target.
* ``handlers/substitution``: a 10-field template (typed single expressions, interpolations,
  nested paths, a constant) rendered against a payload. Target: 50,000 renders/s.
* ``handlers/pipeline``: messages waiting on a ``local`` queue, each received, its condition
  evaluated (on the engine pool ``serve`` uses), one ``complete_task`` (by workflow id and
  task reference: ``GET /workflow`` and ``POST /tasks``) sent to the Conductor API double
  running in its own process on this machine, recorded, acked. Target: 1,000 messages/s.

There is no raw baseline: the figures are checked against the issue's absolute targets.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.framework import BenchError, Case, Metric, RunContext, Sample, Target, Verdict

ORDER = 60
EVENT = "local:bench-handlers"
CONDITION = "$.Message.testKey1 == 'level1' && $.Message.metadata.testKey2 == 123456"


@dataclass(frozen=True, slots=True)
class MinRate(Target):
    """At least this many operations per second."""

    rate: float

    def describe(self, metric: Metric) -> str:
        return f">= {self.rate:,.0f} {metric.unit}"

    def check(self, value: float, baseline: float | None) -> Verdict:
        return Verdict(value >= self.rate, "")


def _sns(index: int, workflow_id: str = "w") -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": f"7e0ba2e2-57fc-5d2c-a8d7-{index:012d}",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:conductor",
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "Message": json.dumps(
            {
                "testKey1": "level1",
                "workflowId": workflow_id,
                "metadata": {"testKey2": 123456, "source": "orders"},
                "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
            }
        ),
    }


# -- condition -----------------------------------------------------------------------------

TYPICAL = "$.workflowType == 'doug' && $.myKey == 'myValue'"


def _event_payload(index: int) -> dict[str, Any]:
    """What an EVENT task publishes: its inputs, then the system fields."""
    return {
        "myKey": "myValue",
        "myNumber": index,
        "customer": {"id": f"c-{index}", "tier": "gold"},
        "sink": "sqs:conductor_doug_testing",
        "asyncComplete": False,
        "workflowInstanceId": f"5f1d0c7e-0000-4000-8000-{index:012d}",
        "workflowType": "doug",
        "workflowVersion": 1,
        "correlationId": None,
    }


def _condition(ctx: RunContext) -> Sample:
    return _measure_condition(TYPICAL, [_event_payload(i) for i in range(ctx.count)])


def _condition_sns(ctx: RunContext) -> Sample:
    return _measure_condition(CONDITION, [_sns(i) for i in range(ctx.count)])


def _measure_condition(source: str, payloads: list[dict[str, Any]]) -> Sample:
    from conductor_events_handlers.conditions import compile_condition
    from conductor_events_handlers.model import EvaluatorType
    from conductor_events_handlers.scripting import Runtime, ScriptEngine, evaluate_on

    engine = ScriptEngine()
    try:
        condition = compile_condition(source, EvaluatorType.JAVASCRIPT, engine)
        script = condition.script
        assert script is not None
        encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

        def batch(runtime: Runtime) -> tuple[int, float]:
            start = time.perf_counter()
            matched = 0
            for payload in payloads:
                if evaluate_on(runtime, script, encode(payload)) is True:
                    matched += 1
            return matched, time.perf_counter() - start

        engine.submit(lambda runtime: evaluate_on(runtime, script, "{}"))  # warm, untimed
        matched, seconds = engine.submit(batch)
    finally:
        engine.close()
    if matched != len(payloads):
        raise BenchError(f"the condition matched {matched} of {len(payloads)} messages")
    return Sample(len(payloads), seconds)


# -- substitution --------------------------------------------------------------------------

TEMPLATE = {
    "workflowId": "${Message.workflowId}",
    "messageId": "${MessageId}",
    "topic": "${TopicArn}",
    "label": "order ${Message.metadata.source}/${MessageId}",
    "count": "${Message.metadata.testKey2}",
    "firstSku": "${Message.items[0].sku}",
    "items": "${Message.items}",
    "missing": "${Message.nothing}",
    "when": "received at ${Timestamp}",
    "constant": "bench",
}


def _substitution(ctx: RunContext) -> Sample:
    from conductor_events_handlers.inline_json import expand
    from conductor_events_handlers.templates import compile_template

    template = compile_template(TEMPLATE)
    payloads = [expand(_sns(i)) for i in range(min(ctx.count, 1000))]
    render = template.render
    done = 0
    start = time.perf_counter()
    while done < ctx.count:
        for payload in payloads:
            render(payload)
        done += len(payloads)
        if ctx.expired():
            break
    seconds = time.perf_counter() - start
    check = render(payloads[0])
    if check["count"] != 123456 or check["firstSku"] != "a":
        raise BenchError(f"unexpected render: {check}")
    return Sample(done, seconds)


# -- pipeline ------------------------------------------------------------------------------


def _pipeline(ctx: RunContext) -> Sample:
    return asyncio.run(_pipeline_async(ctx))


def _start_double() -> tuple[subprocess.Popen[str], str]:
    """The Conductor API double in a process of its own; returns it and its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conductor_events_handlers.testing.conductor_double",
            "--workflow",
            "bench=task_1_ref,task_2_ref",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline()
    if not url.startswith("http://127.0.0.1:"):
        process.terminate()
        raise BenchError(f"the Conductor double did not start: {url!r}")
    return process, url.strip()


async def _pipeline_async(ctx: RunContext) -> Sample:
    from bench.local_queue import open_queues
    from conductor_events.backend import SubscribeOptions
    from conductor_events.messages import Message
    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.engines import EnginePool
    from conductor_events_handlers.loader import load_handlers
    from conductor_events_handlers.processor import Disposition, HandlerProcessor
    from conductor_events_handlers.scripting import ScriptEngine
    from conductor_events_handlers.settings import EventHandlerSettings, ServerSettings
    from conductor_events_handlers.testing.handler_consume import consume

    definition = {
        "name": "bench",
        "event": EVENT,
        "condition": CONDITION,
        "active": True,
        "actions": [
            {
                "action": "complete_task",
                "expandInlineJSON": True,
                "complete_task": {
                    "workflowId": "${Message.workflowId}",
                    "taskRefName": "task_1_ref",
                    "output": {"topic": "${TopicArn}"},
                },
            }
        ],
    }
    path = ctx.workdir / "handlers.json"
    path.write_text(json.dumps(definition))
    process, url = await asyncio.to_thread(_start_double)
    engine = ScriptEngine()  # compiles, as serve's does
    engines = EnginePool()  # evaluates, as serve's pool does
    try:
        loaded = load_handlers([path], engine)
        loaded.raise_for_problems()
        settings = EventHandlerSettings.model_validate(
            {"executions": {"path": str(ctx.workdir / "executions.db")}}
        )
        server = ServerSettings.model_validate({"url": url, "max_connections": 32})
        async with ConductorClient(server) as client, open_queues(ctx.workdir) as queues:
            workflow_ids = [
                await client.start_workflow({"name": "bench", "version": 1})
                for _ in range(ctx.count)
            ]
            for start in range(0, ctx.count, 1000):
                batch = [
                    Message(_sns(i, w)) for i, w in enumerate(workflow_ids[start : start + 1000])
                ]
                result = await queues.publish(EVENT, batch)
                if not result.ok:
                    raise BenchError(f"prefill refused: {result.failure_summary()}")
            processor = HandlerProcessor.create(loaded.handlers, engines, client, settings)
            options = SubscribeOptions(max_in_flight=64, prefetch=64, drain_timeout=5)
            try:
                async with await queues.subscribe(EVENT, options) as subscription:
                    begin = time.perf_counter()
                    outcomes = await consume(
                        subscription,
                        EVENT,
                        processor,
                        count=ctx.count,
                        idle_timeout=5,
                        concurrency=32,
                    )
                    seconds = time.perf_counter() - begin
            finally:
                processor.close()
    finally:
        engines.close()
        engine.close()
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
    acked = sum(1 for o in outcomes if o.disposition is Disposition.ACKED)
    if acked != ctx.count:
        reasons = sorted(
            {str(o.reason) for o in outcomes if o.disposition is not Disposition.ACKED}
        )
        raise BenchError(f"{acked} of {ctx.count} messages acked; failures: {reasons[:3]}")
    return Sample(acked, seconds)


EVALUATIONS = Metric("evals/s", higher_is_better=True, per_op_scale=None)
RENDERS = Metric("renders/s", higher_is_better=True, per_op_scale=None)
MESSAGES = Metric("msg/s", higher_is_better=True, per_op_scale=None)

CASES = [
    Case(
        backend="handlers",
        name="condition",
        description="typical JavaScript condition on an EVENT task's payload (encode, parse, call)",
        metric=EVALUATIONS,
        measure=_condition,
        count=200_000,
        quick_count=20_000,
        target=MinRate(100_000),
        warmup=2_000,
    ),
    Case(
        backend="handlers",
        name="condition-sns",
        description="Conductor's test condition on an SNS-in-SQS payload (inline JSON parsed)",
        metric=EVALUATIONS,
        measure=_condition_sns,
        count=200_000,
        quick_count=20_000,
        target=MinRate(100_000),
        warmup=2_000,
    ),
    Case(
        backend="handlers",
        name="substitution",
        description="render a 10-field ${...} template against a payload",
        metric=RENDERS,
        measure=_substitution,
        count=200_000,
        quick_count=20_000,
        target=MinRate(50_000),
        warmup=2_000,
    ),
    Case(
        backend="handlers",
        name="pipeline",
        description="local queue -> condition -> complete_task on the Conductor double "
        "(own process) -> record -> ack",
        metric=MESSAGES,
        measure=_pipeline,
        count=5_000,
        quick_count=500,
        target=MinRate(1_000),
        repeat=3,
        warmup=200,
    ),
]
