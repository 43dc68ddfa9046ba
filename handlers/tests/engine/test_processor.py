"""One delivery through the handlers, then the ack policy: the scenarios of Conductor's
TestDefaultEventProcessor on a real local queue against the API double."""

from __future__ import annotations

import json
from typing import Any

from structlog.testing import capture_logs

from conductor_events.backend import Delivery, SubscribeOptions
from conductor_events.event_queues import EventQueues
from conductor_events.local.store import NewRow
from conductor_events.messages import Message
from conductor_events_handlers.executions import ExecutionKey, ExecutionStatus
from conductor_events_handlers.processor import (
    NO_HANDLER,
    AckPolicy,
    ActionStatus,
    Disposition,
    HandlerProcessor,
    MessageOutcome,
)
from conductor_events_handlers.settings import NonTransientPolicy
from conductor_events_handlers.testing.conductor_double import ConductorDouble
from conductor_events_handlers.testing.handler_consume import consume

from .conftest import ATTEMPTS, EVENT, HandlerFactory, handler

QUEUE = EVENT.split(":", 1)[1]
SNS_CONDITION = "$.Message.testKey1 == 'level1' && $.Message.metadata.testKey2 == 123456"


def sns(workflow_id: str) -> dict[str, Any]:
    """An SNS notification as SQS delivers it: the message is a JSON string."""
    return {
        "Type": "Notification",
        "MessageId": "7e0ba2e2-57fc-5d2c-a8d7-6a3a7c1d0d4b",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:conductor",
        "Message": json.dumps(
            {"testKey1": "level1", "workflowId": workflow_id, "metadata": {"testKey2": 123456}}
        ),
    }


def complete_task(
    workflow_id: str = "${Message.workflowId}", ref: str = "task_1_ref"
) -> dict[str, Any]:
    return {
        "action": "complete_task",
        "expandInlineJSON": True,
        "complete_task": {"workflowId": workflow_id, "taskRefName": ref},
    }


async def publish(queues: EventQueues, payload: Any, message_id: str | None = None) -> str:
    message = Message(payload=payload) if message_id is None else Message(payload, id=message_id)
    result = await queues.publish(EVENT, [message])
    assert result.ok
    return message.id


async def receive(queues: EventQueues, event: str = EVENT) -> Delivery:
    """The next delivery, left unsettled (it goes back to the queue when this returns)."""
    options = SubscribeOptions(max_in_flight=1, prefetch=1, drain_timeout=0)
    async with await queues.subscribe(event, options) as subscription:
        delivery = await subscription.receive(timeout=5)
    assert delivery is not None
    return delivery


async def process_next(queues: EventQueues, processor: HandlerProcessor) -> MessageOutcome:
    options = SubscribeOptions(max_in_flight=1, prefetch=1, drain_timeout=1)
    async with await queues.subscribe(EVENT, options) as subscription:
        outcomes = await consume(subscription, EVENT, processor, count=1, idle_timeout=5)
    assert len(outcomes) == 1
    return outcomes[0]


async def depth(queues: EventQueues, queue: str = QUEUE) -> int:
    return await queues.client("local").depth(queue)  # type: ignore[attr-defined, no-any-return]


async def test_sns_in_sqs_starts_a_workflow_and_completes_a_task(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    start = {
        "action": "start_workflow",
        "start_workflow": {
            "name": "doug",
            "input": {"source": "${TopicArn}"},
            "correlationId": "${MessageId}",
        },
    }
    processor = await make_processor(handler([start, complete_task()], condition=SNS_CONDITION))
    message_id = await publish(queues, sns(waiting))
    outcome = await process_next(queues, processor)
    assert outcome.disposition is Disposition.ACKED
    assert outcome.reason is None
    assert [a.status for a in outcome.handlers[0].actions] == [ActionStatus.COMPLETED] * 2
    assert double.task(waiting, "task_1_ref")["status"] == "COMPLETED"
    started = double.workflows[outcome.handlers[0].actions[0].output["workflowId"]]
    assert started["correlationId"] == "7e0ba2e2-57fc-5d2c-a8d7-6a3a7c1d0d4b"
    assert started["input"]["conductor.event.messageId"] == message_id
    assert await depth(queues) == 0
    records = await processor.store.records(message_id=message_id)
    assert [(r.action, r.status) for r in records] == [
        ("start_workflow", ExecutionStatus.COMPLETED),
        ("complete_task", ExecutionStatus.COMPLETED),
    ]


async def test_the_condition_with_and_without_evaluator_type(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    processor = await make_processor(
        handler([complete_task()], name="implicit", condition=SNS_CONDITION),
        handler(
            [complete_task(ref="task_2_ref")],
            name="explicit",
            condition=SNS_CONDITION,
            evaluatorType="javascript",
        ),
        handler([complete_task()], name="never", condition="$.Message.testKey1 == 'other'"),
    )
    message_id = await publish(queues, sns(waiting))
    outcome = await process_next(queues, processor)
    assert [(h.handler, h.matched) for h in outcome.handlers] == [
        ("implicit", True),
        ("explicit", True),
        ("never", False),
    ]
    assert outcome.disposition is Disposition.ACKED
    skipped = await processor.store.get(ExecutionKey(EVENT, "never", message_id, 0))
    assert skipped is not None
    assert skipped.status is ExecutionStatus.SKIPPED
    assert skipped.output["condition"] == "$.Message.testKey1 == 'other'"
    assert processor.stats.conditions[(EVENT, "never", "skipped")] == 1


async def test_a_message_no_handler_matches_is_acked_and_recorded(
    queues: EventQueues, make_processor: HandlerFactory
) -> None:
    processor = await make_processor(handler([complete_task()], event="local:elsewhere"))
    message_id = await publish(queues, {"a": 1})
    outcome = await process_next(queues, processor)
    assert (outcome.disposition, outcome.handlers) == (Disposition.ACKED, ())
    record = await processor.store.get(ExecutionKey(EVENT, NO_HANDLER, message_id, 0))
    assert record is not None
    assert record.status is ExecutionStatus.SKIPPED
    assert await depth(queues) == 0


async def test_a_transient_failure_is_nacked_with_backoff_and_not_acked(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    processor = await make_processor(handler([complete_task()]))
    processor.policy = AckPolicy(max_attempts=3, initial_backoff=0.0)
    double.inject(500, times=ATTEMPTS, method="POST", path="^/api/tasks$")
    message_id = await publish(queues, sns(waiting))
    first = await process_next(queues, processor)
    assert first.disposition is Disposition.NACKED
    assert first.reason == (
        "handler 'h1' action 0 (complete_task): POST /tasks: HTTP 500: injected failure"
    )
    assert await depth(queues) == 1
    record = await processor.store.get(ExecutionKey(EVENT, "h1", message_id, 0))
    assert record is not None
    assert record.status is ExecutionStatus.FAILED
    second = await process_next(queues, processor)
    assert (second.attempt, second.disposition) == (2, Disposition.ACKED)
    assert double.task(waiting, "task_1_ref")["status"] == "COMPLETED"


def test_backoff_doubles_up_to_the_limit() -> None:
    policy = AckPolicy(initial_backoff=1.0, max_backoff=5.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_a_redelivered_message_never_repeats_a_completed_action(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    start = {"action": "start_workflow", "start_workflow": {"name": "doug"}}
    processor = await make_processor(handler([start, complete_task()]))
    processor.policy = AckPolicy(initial_backoff=0.0)
    double.inject(503, times=ATTEMPTS, method="POST", path="^/api/tasks$")
    await publish(queues, sns(waiting))
    first = await process_next(queues, processor)
    assert [a.status for a in first.handlers[0].actions] == [
        ActionStatus.COMPLETED,
        ActionStatus.FAILED,
    ]
    second = await process_next(queues, processor)
    assert [a.status for a in second.handlers[0].actions] == [
        ActionStatus.ALREADY_DONE,
        ActionStatus.COMPLETED,
    ]
    assert second.disposition is Disposition.ACKED
    assert len(double.requests_to("POST", "^/api/workflow$")) == 1  # started once, not twice


async def test_transient_failures_dead_letter_after_the_attempt_limit(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    processor = await make_processor(handler([complete_task()]))
    processor.policy = AckPolicy(max_attempts=2, initial_backoff=0.0)
    double.inject(500, times=2 * ATTEMPTS, method="GET", path="^/api/workflow/")
    await publish(queues, sns(waiting))
    assert (await process_next(queues, processor)).disposition is Disposition.NACKED
    last = await process_next(queues, processor)
    assert last.disposition is Disposition.DEAD_LETTERED
    assert last.reason is not None
    assert last.reason.startswith("gave up after 2 attempts")
    dead = await receive(queues, f"{EVENT}.dlq")
    assert dead.dead_letter_reason == last.reason
    assert await depth(queues) == 0


async def test_a_non_transient_failure_dead_letters_at_once(
    queues: EventQueues, make_processor: HandlerFactory
) -> None:
    processor = await make_processor(handler([complete_task(workflow_id="${workflowId}")]))
    await publish(queues, {"workflowId": "no-such-workflow"})
    with capture_logs() as logs:
        outcome = await process_next(queues, processor)
    assert outcome.disposition is Disposition.DEAD_LETTERED
    assert outcome.reason == (
        "handler 'h1' action 0 (complete_task): No workflow found with ID: no-such-workflow"
    )
    dead = await receive(queues, f"{EVENT}.dlq")
    assert dead.dead_letter_reason == outcome.reason
    events = {entry["event"]: entry for entry in logs}
    assert events["handlers.action.failed"]["handler"] == "h1"
    assert events["handlers.message.dead_lettered"]["message_id"] == outcome.message_id
    assert processor.stats.messages["dead-lettered"] == 1


async def test_conductors_ack_and_record_behaviour_as_an_option(
    queues: EventQueues, make_processor: HandlerFactory
) -> None:
    processor = await make_processor(handler([complete_task(workflow_id="${workflowId}")]))
    processor.policy = AckPolicy(non_transient=NonTransientPolicy.ACK)
    message_id = await publish(queues, {"workflowId": "no-such-workflow"})
    outcome = await process_next(queues, processor)
    assert outcome.disposition is Disposition.ACKED
    assert outcome.reason is not None
    assert "No workflow found" in outcome.reason
    assert await depth(queues) == 0
    assert await depth(queues, f"{QUEUE}.dlq") == 0
    record = await processor.store.get(ExecutionKey(EVENT, "h1", message_id, 0))
    assert record is not None
    assert record.status is ExecutionStatus.FAILED


async def test_an_endless_condition_dead_letters_and_the_listener_keeps_going(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    processor = await make_processor(
        handler([complete_task(workflow_id="${id}")], condition="while ($.spin) {} true")
    )
    await publish(queues, {"spin": True, "id": waiting})
    await publish(queues, {"spin": False, "id": waiting})
    options = SubscribeOptions(max_in_flight=2, prefetch=2, drain_timeout=1)
    async with await queues.subscribe(EVENT, options) as subscription:
        outcomes = await consume(subscription, EVENT, processor, count=2, idle_timeout=5)
    assert [o.disposition for o in outcomes] == [Disposition.DEAD_LETTERED, Disposition.ACKED]
    assert outcomes[0].reason == (
        "handler 'h1': condition failed: condition ran longer than 0.3s and was stopped"
    )
    assert (await receive(queues, f"{EVENT}.dlq")).dead_letter_reason == outcomes[0].reason
    assert double.task(waiting, "task_1_ref")["status"] == "COMPLETED"


async def test_a_payload_that_is_not_json(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    task_id = double.task(waiting, "task_1_ref")["taskId"]
    raw = {
        "action": "complete_task",
        "complete_task": {"taskId": task_id, "output": {"raw": "${$}"}},
    }
    processor = await make_processor(
        handler([raw], name="text", condition="typeof $ === 'string'"),
        handler([raw], name="strict", condition="$.kind.length > 0"),
    )
    store = queues.client("local").store  # type: ignore[attr-defined]
    await store.insert(QUEUE, [NewRow("raw-1", b"order 42 {shipped", None, None, 0.0)])
    outcome = await process_next(queues, processor)
    assert double.tasks[task_id]["outputData"]["raw"] == "order 42 {shipped"
    assert outcome.handlers[1].error is not None
    assert outcome.handlers[1].error.startswith("condition failed: TypeError")
    assert outcome.disposition is Disposition.DEAD_LETTERED


async def test_conductor_not_answering_at_all_is_retried(
    queues: EventQueues, double: ConductorDouble, make_processor: HandlerFactory
) -> None:
    waiting = double.start_workflow("doug")
    processor = await make_processor(handler([complete_task()]))
    await double.stop()  # nothing listens on its port now
    await publish(queues, sns(waiting))
    outcome = await process_next(queues, processor)
    assert outcome.disposition is Disposition.NACKED
    assert outcome.delay == 1.0  # conductor.event-handlers.retry.initial-backoff
    assert outcome.reason is not None
    assert "cannot reach Conductor" in outcome.reason


async def test_a_defect_is_a_retried_failure_not_a_lost_message(
    queues: EventQueues, make_processor: HandlerFactory
) -> None:
    processor = await make_processor(handler([complete_task()]))

    async def broken(event: str, message: Message) -> list[Any]:
        raise RuntimeError("bug")

    processor.run_handlers = broken  # type: ignore[method-assign]
    await publish(queues, {"a": 1})
    outcome = await process_next(queues, processor)
    assert outcome.disposition is Disposition.NACKED
    assert outcome.reason == "unexpected RuntimeError: bug"
    assert await depth(queues) == 1


async def test_without_a_dead_letter_destination_the_message_stays_on_the_queue(
    queues: EventQueues, make_processor: HandlerFactory, monkeypatch: Any
) -> None:
    """A queue type with no dead-letter destination must not lose a failed message."""
    from conductor_events.local.client import LocalHandle

    async def no_destination(self: LocalHandle, reason: str) -> None:
        raise NotImplementedError

    monkeypatch.setattr(LocalHandle, "dead_letter", no_destination)
    processor = await make_processor(handler([complete_task(workflow_id="${workflowId}")]))
    await publish(queues, {"workflowId": "no-such-workflow"})
    outcome = await process_next(queues, processor)
    assert outcome.settle_error is not None
    assert outcome.settle_error.startswith("no dead-letter destination: kept on the queue")
    assert await depth(queues) == 1  # nacked for later, not acked
    assert await depth(queues, f"{QUEUE}.dlq") == 0
