"""Runaway conditions under ``serve``: fifteen ``while(true){}`` messages on one event neither
hold up another event's messages (the engine pool keeps an engine free for it) nor come back
while they wait in line (their visibility is extended), so each is evaluated exactly once.

Ordering and counts are read from the service's log, which it writes in order; no assertion
depends on how fast the machine is."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from conductor_events.messages import Message
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import (
    EVENT,
    Publisher,
    Service,
    ServiceFactory,
    complete_handler,
    eventually,
    order_messages,
    start_workflows,
    write_handlers,
    write_properties,
)

POISON = "local:poison"
POISONED = 15
GOOD = 5


def poison_handler() -> dict[str, Any]:
    handler = complete_handler(POISON, name="poison")
    handler["condition"] = "while (true) {}"
    return handler


def start(tmp_path: Path, double: ConductorDouble, serve: ServiceFactory) -> Service:
    """``serve`` with two engines, a half-second script timeout, and a visibility timeout
    shorter than the seven seconds the last poison message waits in line."""
    properties = write_properties(
        tmp_path / "app.properties",
        double,
        **{
            "conductor.event-handlers.script.timeout": "500ms",
            "conductor.event-handlers.script.engines": "2",
            "conductor.event-queues.local.visibility-timeout": "2s",
            "conductor.event-handlers.extend-interval": "300ms",
        },
    )
    handlers = write_handlers(
        tmp_path / "handlers.json",
        poison_handler(),
        complete_handler(condition="$.n >= 0"),
    )
    return serve("-c", str(properties), "--handlers", str(handlers))


def is_line(line: dict[str, Any], event: str, queue_event: str) -> bool:
    return line.get("event") == event and line.get("queue_event") == queue_event


def poison_evaluations(lines: list[dict[str, Any]]) -> int:
    return sum(1 for line in lines if is_line(line, "handlers.condition.failed", POISON))


async def test_runaway_conditions_of_one_event_do_not_hold_up_another(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    service = start(tmp_path, double, serve)
    await service.wait_logged("serve.started")
    poison = [Message({"n": n}, id=f"poison-{n}") for n in range(POISONED)]
    await publisher.publish(POISON, poison)
    await service.wait_logged("handlers.condition.failed")  # the rest are waiting in line
    evaluated_before = poison_evaluations(service.read_log())

    workflows = start_workflows(double, GOOD)
    await publisher.publish(EVENT, order_messages(workflows))

    def good_done() -> bool:
        lines = service.read_log()
        return sum(1 for line in lines if is_line(line, "handlers.message.acked", EVENT)) == GOOD

    await eventually(good_done, 60, "the good messages")
    lines = service.read_log()
    last_good = max(
        index for index, line in enumerate(lines) if is_line(line, "handlers.message.acked", EVENT)
    )
    evaluated_meanwhile = poison_evaluations(lines[:last_good]) - evaluated_before
    # With one engine for everything the good messages waited behind the seven or more
    # poison messages already in line; with the pool they wait for none of them (the poison
    # message finishing on its own engine meanwhile may be counted, and one more at most).
    assert evaluated_meanwhile <= 2, evaluated_meanwhile
    assert poison_evaluations(lines[:last_good]) < POISONED
    for workflow_id in workflows:
        assert double.task(workflow_id, "task_a")["status"] == "COMPLETED"


async def test_each_runaway_message_is_evaluated_once_while_it_waits_in_line(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    service = start(tmp_path, double, serve)
    await service.wait_logged("serve.started")
    poison = [Message({"n": n}, id=f"poison-{n}") for n in range(POISONED)]
    await publisher.publish(POISON, poison)

    def dead_lettered() -> list[dict[str, Any]]:
        return [
            line
            for line in service.read_log()
            if is_line(line, "handlers.message.dead_lettered", POISON)
        ]

    await eventually(lambda: len(dead_lettered()) >= POISONED, 120, "every poison message")
    lines = service.read_log()
    evaluations = Counter(
        line["message_id"] for line in lines if is_line(line, "handlers.condition.failed", POISON)
    )
    assert evaluations == Counter({message.id: 1 for message in poison})
    attempts = {line["message_id"]: line["attempt"] for line in dead_lettered()}
    assert attempts == {message.id: 1 for message in poison}
    assert len(dead_lettered()) == POISONED
    assert not [line for line in lines if line.get("event") == "local.delivery.expired"]
    assert await publisher.depth(POISON) == 0
    assert await publisher.depth(POISON + ".dlq") == POISONED
