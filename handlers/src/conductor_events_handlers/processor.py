"""One delivery through the handlers of its event, then the ack policy.

:meth:`HandlerProcessor.process` is the unit a consumer runs per message: it takes the event
string the message came from and its :class:`~conductor_events.backend.Delivery`, runs every
active handler of that event, settles the delivery exactly once, and returns a
:class:`MessageOutcome` saying what happened. It never raises for anything a message or the
Conductor server can cause, so a long-running consumer calls it in a loop (or many at once:
it keeps no per-message state) and moves on.

Per message:

1. The active handlers of the event, in definition order (none: recorded ``SKIPPED``, acked).
2. Every condition, against the payload with inline JSON expanded. False: that handler is
   recorded ``SKIPPED``. A condition that throws or times out fails the message.
3. For each matching handler, each action in order: claimed in the execution records
   (one that already completed is not run again), executed against Conductor, recorded
   ``COMPLETED`` or ``FAILED``. Every action is attempted even when an earlier one failed,
   as Conductor runs them all (in parallel there; in order here).
4. The ack policy (:class:`AckPolicy`), fixing Conductor's silent drops:

   * nothing failed (all done, or nothing matched): **ack**;
   * a failure that retrying cannot fix (a condition error, HTTP 4xx, no such workflow):
     **dead-letter** with the reason at once, or, with
     ``conductor.event-handlers.non-transient-failure=ack``, Conductor's behaviour: ack and
     keep the failure in the execution record only;
   * only transient failures (connection refused, timeout, 429, 5xx, a task not scheduled yet):
     **nack** with exponential backoff, and **dead-letter** with the reason once the message
     has been delivered ``retry.max-attempts`` times.

While a message is in hand (waiting for a condition engine, or running conditions and
actions), its visibility timeout or lock is extended every
``conductor.event-handlers.extend-interval`` (:mod:`~conductor_events_handlers.renewal`), so
the queue does not deliver it again meanwhile.

Every outcome is logged with the message id, handler and action (one line per message, listing
each action and its status; a failed action or condition also has a line of its own), and
counted in :attr:`HandlerProcessor.stats`.
"""

from __future__ import annotations

import enum
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from conductor_events_handlers.actions import ActionExecutor, ActionFailure
from conductor_events_handlers.conditions import ConditionEvaluator, ConditionFailure
from conductor_events_handlers.executions import (
    Claim,
    ExecutionKey,
    ExecutionStore,
    ExecutionStoreError,
)
from conductor_events_handlers.inline_json import expand
from conductor_events_handlers.renewal import VisibilityRenewer
from conductor_events_handlers.settings import NonTransientPolicy

if TYPE_CHECKING:
    from conductor_events.backend import Delivery
    from conductor_events.messages import Message
    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.registry import HandlerSet, PreparedHandler
    from conductor_events_handlers.scripting import ScriptRunner
    from conductor_events_handlers.settings import EventHandlerSettings

log = structlog.get_logger(__name__)

NO_HANDLER = ""
"""The handler name of the record kept for a message whose event has no active handler."""

_PRUNE_EVERY = 600.0


class Disposition(enum.StrEnum):
    """How a delivery was settled."""

    ACKED = "acked"
    NACKED = "nacked"
    DEAD_LETTERED = "dead-lettered"


class ActionStatus(enum.StrEnum):
    COMPLETED = "COMPLETED"
    """Done by this delivery."""
    ALREADY_DONE = "ALREADY_DONE"
    """Completed by an earlier delivery of the same message; not run again."""
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    index: int
    action: str
    status: ActionStatus
    output: Any = None
    error: str | None = None
    transient: bool = False


@dataclass(frozen=True, slots=True)
class HandlerOutcome:
    """What one handler did with the message. ``matched`` is ``None`` when its condition
    could not be evaluated (``error`` says why)."""

    handler: str
    matched: bool | None
    actions: tuple[ActionOutcome, ...] = ()
    error: str | None = None

    def failures(self) -> list[Failure]:
        found = []
        if self.error is not None:
            found.append(Failure(f"handler {self.handler!r}: {self.error}", transient=False))
        for action in self.actions:
            if action.status is ActionStatus.FAILED:
                found.append(
                    Failure(
                        f"handler {self.handler!r} action {action.index} ({action.action}): "
                        f"{action.error}",
                        transient=action.transient,
                    )
                )
        return found


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    transient: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """What the ack policy decided: how to settle, why, and after how long (nack)."""

    disposition: Disposition
    reason: str | None = None
    delay: float | None = None


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """Everything :meth:`HandlerProcessor.process` did with one delivery."""

    event: str
    message_id: str
    attempt: int
    disposition: Disposition
    reason: str | None
    delay: float | None
    handlers: tuple[HandlerOutcome, ...]
    settle_error: str | None = None
    """Set when the broker refused the settlement; the message comes back by its timeout."""


@dataclass(frozen=True, slots=True)
class AckPolicy:
    """Turns a message's failures into a settlement.

    Attributes:
        max_attempts: deliveries before transient failures dead-letter the message.
        initial_backoff: seconds before the second delivery; doubled each time after.
        max_backoff: the longest delay.
        non_transient: dead-letter at once, or ack (Conductor's behaviour).
    """

    max_attempts: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 300.0
    non_transient: NonTransientPolicy = NonTransientPolicy.DEAD_LETTER

    @classmethod
    def from_settings(cls, settings: EventHandlerSettings) -> AckPolicy:
        return cls(
            max_attempts=settings.retry.max_attempts,
            initial_backoff=settings.retry.initial_backoff.total_seconds(),
            max_backoff=settings.retry.max_backoff.total_seconds(),
            non_transient=settings.non_transient_failure,
        )

    def backoff(self, attempt: int) -> float:
        """The delay before delivery ``attempt + 1``."""
        return float(min(self.initial_backoff * 2 ** max(attempt - 1, 0), self.max_backoff))

    def decide(self, failures: Sequence[Failure], attempt: int) -> Decision:
        if not failures:
            return Decision(Disposition.ACKED)
        permanent = [f.reason for f in failures if not f.transient]
        if permanent:
            reason = "; ".join(permanent)
            if self.non_transient is NonTransientPolicy.ACK:
                return Decision(Disposition.ACKED, reason)
            return Decision(Disposition.DEAD_LETTERED, reason)
        reason = "; ".join(f.reason for f in failures)
        if attempt >= self.max_attempts:
            return Decision(
                Disposition.DEAD_LETTERED,
                f"gave up after {attempt} attempts (conductor.event-handlers.retry.max-attempts):"
                f" {reason}",
            )
        return Decision(Disposition.NACKED, reason, self.backoff(attempt))


@dataclass
class ProcessorStats:
    """Counters of everything the processor did, for logs, metrics and tests."""

    messages: Counter[str] = field(default_factory=Counter)
    """By disposition: ``acked``, ``nacked``, ``dead-lettered``."""
    conditions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """By (event, handler, ``matched`` | ``skipped`` | ``failed``)."""
    actions: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """By (event, handler, action, status)."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class HandlerProcessor:
    """Runs the handlers of an event against deliveries, and settles each delivery.

    Args:
        handlers: the prepared handlers.
        conditions: evaluates conditions (owns the JavaScript engine's use).
        executor: runs actions against Conductor.
        store: the execution records.
        policy: the ack policy.
        retention: seconds execution records are kept.
        extend_interval: seconds between extensions of a message's visibility while it is in
            hand; ``None`` or 0 for none.
    """

    def __init__(
        self,
        handlers: HandlerSet,
        conditions: ConditionEvaluator,
        executor: ActionExecutor,
        store: ExecutionStore,
        policy: AckPolicy | None = None,
        *,
        retention: float | None = None,
        extend_interval: float | None = None,
    ) -> None:
        self.handlers = handlers
        self.conditions = conditions
        self.executor = executor
        self.store = store
        self.policy = policy or AckPolicy()
        self.retention = retention
        self.renewer = VisibilityRenewer(extend_interval) if extend_interval else None
        self.owner = _owner()
        self.stats = ProcessorStats()
        self._next_prune = 0.0

    @classmethod
    def create(
        cls,
        handlers: HandlerSet,
        engine: ScriptRunner,
        client: ConductorClient,
        settings: EventHandlerSettings,
    ) -> HandlerProcessor:
        """A processor configured by ``conductor.event-handlers.*``; ``engine`` is one
        JavaScript engine or a pool of them."""
        executions = settings.executions
        store = ExecutionStore(executions.path, lease=executions.lease.total_seconds())
        return cls(
            handlers,
            ConditionEvaluator(engine),
            ActionExecutor(client),
            store,
            AckPolicy.from_settings(settings),
            retention=executions.retention.total_seconds(),
            extend_interval=settings.extend_interval.total_seconds(),
        )

    def with_handlers(self, handlers: HandlerSet) -> HandlerProcessor:
        """A processor for other handlers sharing everything else with this one (engines,
        client, execution records, ack policy, owner, visibility renewal), with stats of its
        own."""
        sibling = HandlerProcessor(
            handlers,
            self.conditions,
            self.executor,
            self.store,
            self.policy,
            retention=self.retention,
        )
        sibling.renewer = self.renewer
        sibling.owner = self.owner
        return sibling

    async def process(self, event: str, delivery: Delivery) -> MessageOutcome:
        """Run the handlers of ``event`` on a delivery, settle it, and say what happened."""
        renewer = self.renewer
        if renewer is not None:
            renewer.hold(delivery)
        try:
            handler_outcomes = await self.run_handlers(event, delivery.message)
            failures = [f for outcome in handler_outcomes for f in outcome.failures()]
        except Exception as exc:  # a defect must not leave the message unsettled
            log.exception("handlers.message.error", message_id=delivery.message.id)
            handler_outcomes = []
            failures = [Failure(f"unexpected {type(exc).__name__}: {exc}", transient=True)]
        finally:
            if renewer is not None:
                renewer.drop(delivery)
        decision = self.policy.decide(failures, delivery.attempt)
        settle_error = await self._settle(delivery, decision)
        outcome = MessageOutcome(
            event=event,
            message_id=delivery.message.id,
            attempt=delivery.attempt,
            disposition=decision.disposition,
            reason=decision.reason,
            delay=decision.delay,
            handlers=tuple(handler_outcomes),
            settle_error=settle_error,
        )
        self._report(outcome)
        await self._maybe_prune()
        return outcome

    async def run_handlers(self, event: str, message: Message) -> list[HandlerOutcome]:
        """Conditions and actions of every active handler of ``event``; does not settle."""
        handlers = self.handlers.for_event(event)
        if not handlers:
            await self._record_skip(
                ExecutionKey(event, NO_HANDLER, message.id, 0),
                {"reason": f"no active handler for event {event}"},
            )
            return []
        verdicts = await self.conditions.evaluate(
            [h.condition for h in handlers], message.payload, key=event
        )
        outcomes = []
        for handler, verdict in zip(handlers, verdicts, strict=True):
            key = ExecutionKey(event, handler.name, message.id, 0)
            if isinstance(verdict, ConditionFailure):
                self.stats.conditions[(event, handler.name, "failed")] += 1
                log.warning(
                    "handlers.condition.failed",
                    queue_event=event,
                    handler=handler.name,
                    message_id=message.id,
                    error=verdict.message,
                )
                await self._record(self.store.fail_handler(key, verdict.message))
                outcomes.append(HandlerOutcome(handler.name, None, error=verdict.message))
            elif not verdict:
                self.stats.conditions[(event, handler.name, "skipped")] += 1
                await self._record_skip(
                    key, {"msg": message.payload, "condition": handler.handler.condition}
                )
                outcomes.append(HandlerOutcome(handler.name, False))
            else:
                self.stats.conditions[(event, handler.name, "matched")] += 1
                actions = await self._run_actions(event, handler, message)
                outcomes.append(HandlerOutcome(handler.name, True, actions))
        return outcomes

    async def _run_actions(
        self, event: str, handler: PreparedHandler, message: Message
    ) -> tuple[ActionOutcome, ...]:
        outcomes = []
        expanded: Any = None
        for prepared in handler.actions:
            kind = prepared.type.value
            key = ExecutionKey(event, handler.name, message.id, prepared.index)
            try:
                claim = await self.store.claim(key, kind, self.owner)
            except ExecutionStoreError as exc:
                outcomes.append(self._action_failed(key, kind, str(exc), transient=True))
                continue
            if claim is Claim.DONE:
                outcomes.append(ActionOutcome(prepared.index, kind, ActionStatus.ALREADY_DONE))
                self.stats.actions[(event, handler.name, kind, ActionStatus.ALREADY_DONE)] += 1
                continue
            if claim is Claim.BUSY:
                outcomes.append(
                    self._action_failed(
                        key, kind, "another consumer is running this action now", transient=True
                    )
                )
                continue
            payload = message.payload
            if prepared.action.expand_inline_json:
                if expanded is None:
                    expanded = expand(payload)
                payload = expanded
            try:
                output = await self.executor.execute(prepared, payload, event, message.id)
            except ActionFailure as exc:
                await self._record(self.store.fail(key, exc.message))
                outcomes.append(self._action_failed(key, kind, exc.message, exc.transient))
                continue
            except Exception as exc:  # a defect here must not stop the consumer
                log.exception("handlers.action.error", handler=handler.name, action=kind)
                error = f"unexpected {type(exc).__name__}: {exc}"
                await self._record(self.store.fail(key, error))
                outcomes.append(self._action_failed(key, kind, error, transient=False))
                continue
            await self._record(self.store.complete(key, output))
            self.stats.actions[(event, handler.name, kind, ActionStatus.COMPLETED)] += 1
            outcomes.append(ActionOutcome(prepared.index, kind, ActionStatus.COMPLETED, output))
        return tuple(outcomes)

    def _action_failed(
        self, key: ExecutionKey, kind: str, error: str, transient: bool
    ) -> ActionOutcome:
        self.stats.actions[(key.event, key.handler, kind, ActionStatus.FAILED)] += 1
        log.warning(
            "handlers.action.failed",
            queue_event=key.event,
            handler=key.handler,
            action=kind,
            action_index=key.action_index,
            message_id=key.message_id,
            error=error,
            transient=transient,
        )
        return ActionOutcome(
            key.action_index, kind, ActionStatus.FAILED, error=error, transient=transient
        )

    async def _record_skip(self, key: ExecutionKey, output: Any) -> None:
        await self._record(self.store.skip(key, output))

    @staticmethod
    async def _record(operation: Any) -> bool:
        """Run a store write whose failure must not lose the message's settlement."""
        try:
            await operation
        except ExecutionStoreError as exc:
            log.error("handlers.executions.write_failed", error=str(exc))
            return False
        return True

    async def _settle(self, delivery: Delivery, decision: Decision) -> str | None:
        try:
            if decision.disposition is Disposition.ACKED:
                await delivery.ack()
            elif decision.disposition is Disposition.NACKED:
                await delivery.nack(decision.delay or 0.0, decision.reason)
            else:
                return await self._dead_letter(delivery, decision.reason or "failed")
        except Exception as exc:
            log.error(
                "handlers.settle.failed",
                message_id=delivery.message.id,
                disposition=decision.disposition.value,
                error=f"{type(exc).__name__}: {exc}",
            )
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _dead_letter(self, delivery: Delivery, reason: str) -> str | None:
        """Dead-letter the message; a queue type with no dead-letter destination keeps it on
        the queue instead, redelivered at the longest backoff: never acked, never lost."""
        try:
            await delivery.dead_letter(reason)
        except NotImplementedError:
            delay = self.policy.max_backoff
            log.error(
                "handlers.message.kept",
                message_id=delivery.message.id,
                reason=reason,
                hint=f"the queue type has no dead-letter destination; the message stays on "
                f"the queue and comes back every {delay:g}s until it is handled or removed",
            )
            await delivery.nack(delay, reason)
            return f"no dead-letter destination: kept on the queue, retried every {delay:g}s"
        return None

    def _report(self, outcome: MessageOutcome) -> None:
        self.stats.messages[outcome.disposition.value] += 1
        fields: dict[str, Any] = {
            "queue_event": outcome.event,
            "message_id": outcome.message_id,
            "attempt": outcome.attempt,
            "actions": [
                f"{h.handler}[{a.index}] {a.action}: {a.status.value}"
                for h in outcome.handlers
                for a in h.actions
            ],
        }
        if outcome.disposition is Disposition.ACKED and outcome.reason is None:
            log.info("handlers.message.acked", **fields)
        elif outcome.disposition is Disposition.ACKED:
            log.warning("handlers.message.acked_with_failures", reason=outcome.reason, **fields)
        elif outcome.disposition is Disposition.NACKED:
            log.warning(
                "handlers.message.nacked", reason=outcome.reason, delay=outcome.delay, **fields
            )
        else:
            log.error("handlers.message.dead_lettered", reason=outcome.reason, **fields)

    async def _maybe_prune(self) -> None:
        if self.retention is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + _PRUNE_EVERY
        try:
            removed = await self.store.prune(self.retention)
        except ExecutionStoreError as exc:
            log.warning("handlers.executions.prune_failed", error=str(exc))
            return
        if removed:
            log.info("handlers.executions.pruned", removed=removed)

    def close(self) -> None:
        """Close the execution record file (the client and engine belong to the caller)."""
        self.store.close()
