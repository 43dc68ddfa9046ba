"""Executing handler actions against a Conductor server, as Conductor's
``SimpleActionProcessor`` does, plus the two actions only Orkes has.

``complete_task`` / ``fail_task``
    The template is ``{workflowId, taskId, taskRefName, reasonForIncompletion}`` merged with
    ``output`` (``output`` keys win), substituted against the payload. The task is ``taskId``
    when it is set (``GET /tasks/{taskId}``), else the latest iteration of ``taskRefName`` in
    ``workflowId`` (``GET /workflow/{id}``; DO_WHILE iterations ``ref__N`` count as ``ref``).
    The task's output becomes the whole substituted map plus ``conductor.event.messageId`` and
    ``conductor.event.name``; ``POST /tasks`` sends it with the status (and, for ``fail_task``,
    ``reasonForIncompletion``). A task that has already ended is left alone (its update would
    be ignored by Conductor anyway), which also makes a redelivered message harmless.
``start_workflow``
    ``name`` and ``version`` as written; ``input`` and ``correlationId`` substituted;
    ``taskToDomain`` from the handler, else from the payload's ``taskToDomain``. The input gets
    ``conductor.event.messageId`` and ``conductor.event.name``. Output ``{workflowId}``.
``terminate_workflow``
    ``DELETE /workflow/{workflowId}?reason=`` with both substituted; a workflow that already
    ended counts as done.
``update_workflow_variables``
    ``POST /workflow/{workflowId}/variables`` with the substituted ``variables``; with
    ``appendArray``, a list value is appended to the variable's current list (read first with
    ``GET /workflow/{id}``).

Where Conductor records "no workflow found" as a *completed* execution with an ``error`` key
(and acks the message), a missing workflow or task here is an :class:`ActionFailure`. A task
that is not there yet in a workflow that is still running is a transient failure: the event
may have arrived before the task was scheduled (Netflix#1640), so it is retried later.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from conductor_events_handlers.client import ConductorClient, ConductorError, NotFoundError
from conductor_events_handlers.jsonpos import Path
from conductor_events_handlers.model import (
    Action,
    ActionType,
    StartWorkflow,
    TaskDetails,
    TerminateWorkflow,
    UpdateWorkflowVariables,
)
from conductor_events_handlers.templates import Template, TemplateError, compile_template

MESSAGE_ID_KEY = "conductor.event.messageId"
EVENT_NAME_KEY = "conductor.event.name"

_ITERATION = re.compile(r"__\d+$")
_TERMINAL_TASK = frozenset(
    {
        "COMPLETED",
        "COMPLETED_WITH_ERRORS",
        "FAILED",
        "FAILED_WITH_TERMINAL_ERROR",
        "CANCELED",
        "TIMED_OUT",
        "SKIPPED",
    }
)
_RUNNING_WORKFLOW = frozenset({"RUNNING", "PAUSED"})


class ActionFailure(Exception):
    """An action that did not happen; ``transient`` says whether a later delivery may succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class TemplateFieldError(ValueError):
    """Templates in an action that do not compile: ``problems`` holds each one's path
    (relative to the action) and message."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class PreparedAction:
    """An action with its templates compiled; ``index`` is its place in the handler."""

    index: int
    action: Action
    template: Template
    correlation_id: Template | None = None

    @property
    def type(self) -> ActionType:
        return self.action.action


_PAYLOAD_TASK_TO_DOMAIN = compile_template("${taskToDomain}")


def prepare_action(action: Action, index: int, allowed_env: Collection[str] = ()) -> PreparedAction:
    """Compile an action's templates.

    Raises:
        TemplateFieldError: templates that do not compile, each with its field's path.
    """
    params = action.parameters
    key = action.action.value
    problems: list[tuple[Path, str]] = []

    def check(value: Any, *path: str | int) -> None:
        try:
            compile_template(value, allowed_env)
        except TemplateError as exc:
            problems.append(((key, *path), str(exc)))

    whole: dict[str, Any]
    correlation: Any = None
    if isinstance(params, TaskDetails):
        whole = {
            "workflowId": params.workflow_id,
            "taskId": params.task_id,
            "taskRefName": params.task_ref_name,
            "reasonForIncompletion": params.reason_for_incompletion,
        }
        for name, value in whole.items():
            check(value, name)
        for name, value in params.output.items():
            check(value, "output", name)
        whole = {**whole, **params.output}
    elif isinstance(params, StartWorkflow):
        whole = dict(params.input)
        for name, value in whole.items():
            check(value, "input", name)
        check(params.correlation_id, "correlationId")
        correlation = params.correlation_id
    elif isinstance(params, TerminateWorkflow):
        whole = {"workflowId": params.workflow_id, "terminationReason": params.termination_reason}
        for name, value in whole.items():
            check(value, name)
    else:
        check(params.workflow_id, "workflowId")
        for name, value in params.variables.items():
            check(value, "variables", name)
        whole = {"workflowId": params.workflow_id, "variables": dict(params.variables)}
    if problems:
        raise TemplateFieldError(problems)
    correlation_template = (
        compile_template(correlation, allowed_env) if isinstance(params, StartWorkflow) else None
    )
    return PreparedAction(index, action, compile_template(whole, allowed_env), correlation_template)


def _text(value: Any) -> str | None:
    """A substituted id as text, or ``None`` when it is missing or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ref_without_iteration(ref: str) -> str:
    return _ITERATION.sub("", ref)


class ActionExecutor:
    """Runs prepared actions through a :class:`ConductorClient`."""

    def __init__(self, client: ConductorClient) -> None:
        self.client = client

    async def execute(
        self, prepared: PreparedAction, payload: Any, event: str, message_id: str
    ) -> dict[str, Any]:
        """Run one action; return its output (what the execution record keeps).

        Raises:
            ActionFailure: the action did not happen; transient or not.
        """
        try:
            kind = prepared.type
            if kind in (ActionType.COMPLETE_TASK, ActionType.FAIL_TASK):
                return await self._update_task(prepared, payload, event, message_id)
            if kind is ActionType.START_WORKFLOW:
                return await self._start_workflow(prepared, payload, event, message_id)
            if kind is ActionType.TERMINATE_WORKFLOW:
                return await self._terminate(prepared, payload)
            return await self._update_variables(prepared, payload)
        except ConductorError as exc:
            raise ActionFailure(exc.message, transient=exc.transient) from None

    async def _update_task(
        self, prepared: PreparedAction, payload: Any, event: str, message_id: str
    ) -> dict[str, Any]:
        replaced: dict[str, Any] = prepared.template.render(payload)
        task = await self._find_task(replaced)
        failed = prepared.type is ActionType.FAIL_TASK
        status = task.get("status")
        if status in _TERMINAL_TASK:
            replaced["skipped"] = f"task {task.get('taskId')} had already ended as {status}"
            return replaced
        output = dict(replaced)
        output[MESSAGE_ID_KEY] = message_id
        output[EVENT_NAME_KEY] = event
        result: dict[str, Any] = {
            "workflowInstanceId": task.get("workflowInstanceId"),
            "taskId": task.get("taskId"),
            "status": "FAILED" if failed else "COMPLETED",
            "outputData": output,
        }
        if failed:
            result["reasonForIncompletion"] = _text(replaced.get("reasonForIncompletion"))
        await self.client.update_task(result)
        return replaced

    async def _find_task(self, replaced: Mapping[str, Any]) -> dict[str, Any]:
        task_id = _text(replaced.get("taskId"))
        workflow_id = _text(replaced.get("workflowId"))
        ref = _text(replaced.get("taskRefName"))
        if task_id is not None:
            task = await self.client.get_task(task_id)
            if task is None:
                raise ActionFailure(f"No task found with taskId: {task_id}", transient=False)
            return task
        if workflow_id is None or ref is None:
            raise ActionFailure(
                "no task to update: taskId is empty, and so is workflowId or taskRefName after "
                f"substitution (workflowId: {workflow_id}, taskRefName: {ref})",
                transient=False,
            )
        try:
            workflow = await self.client.get_workflow(workflow_id, include_tasks=True)
        except NotFoundError:
            raise ActionFailure(
                f"No workflow found with ID: {workflow_id}", transient=False
            ) from None
        candidates = [
            (int(t.get("iteration") or 0), position, t)
            for position, t in enumerate(workflow.get("tasks") or [])
            if isinstance(t, dict)
            and _ref_without_iteration(str(t.get("referenceTaskName"))) == ref
        ]
        if not candidates:
            running = workflow.get("status") in _RUNNING_WORKFLOW
            raise ActionFailure(
                f"No task found with reference name: {ref}, workflowId: {workflow_id} "
                f"(workflow is {workflow.get('status')}"
                + ("; the task may not be scheduled yet)" if running else ")"),
                transient=running,
            )
        return max(candidates, key=lambda c: (c[0], c[1]))[2]

    async def _start_workflow(
        self, prepared: PreparedAction, payload: Any, event: str, message_id: str
    ) -> dict[str, Any]:
        params = prepared.action.parameters
        assert isinstance(params, StartWorkflow)
        workflow_input: dict[str, Any] = prepared.template.render(payload)
        workflow_input[MESSAGE_ID_KEY] = message_id
        workflow_input[EVENT_NAME_KEY] = event
        request: dict[str, Any] = {"name": params.name, "input": workflow_input}
        if params.version is not None:
            request["version"] = params.version
        if prepared.correlation_id is not None:
            correlation_id = _text(prepared.correlation_id.render(payload))
            if correlation_id is not None:
                request["correlationId"] = correlation_id
        task_to_domain = params.task_to_domain
        if task_to_domain is None:
            from_payload = _PAYLOAD_TASK_TO_DOMAIN.render(payload)
            if isinstance(from_payload, dict) and all(
                isinstance(v, str) for v in from_payload.values()
            ):
                task_to_domain = from_payload
        if task_to_domain:
            request["taskToDomain"] = dict(task_to_domain)
        workflow_id = await self.client.start_workflow(request)
        return {"workflowId": workflow_id}

    async def _terminate(self, prepared: PreparedAction, payload: Any) -> dict[str, Any]:
        rendered = prepared.template.render(payload)
        workflow_id = _text(rendered.get("workflowId"))
        if workflow_id is None:
            raise ActionFailure("workflowId is empty after substitution", transient=False)
        reason = _text(rendered.get("terminationReason"))
        output: dict[str, Any] = {"workflowId": workflow_id, "terminationReason": reason}
        try:
            await self.client.terminate_workflow(workflow_id, reason)
        except NotFoundError:
            raise ActionFailure(
                f"No workflow found with ID: {workflow_id}", transient=False
            ) from None
        except ConductorError as exc:
            if exc.status != 409:
                raise
            output["skipped"] = f"the workflow had already ended: {exc.message}"
        return output

    async def _update_variables(self, prepared: PreparedAction, payload: Any) -> dict[str, Any]:
        params = prepared.action.parameters
        assert isinstance(params, UpdateWorkflowVariables)
        rendered = prepared.template.render(payload)
        workflow_id = _text(rendered.get("workflowId"))
        if workflow_id is None:
            raise ActionFailure("workflowId is empty after substitution", transient=False)
        variables: dict[str, Any] = rendered.get("variables") or {}
        try:
            if params.append_array and any(isinstance(v, list) for v in variables.values()):
                workflow = await self.client.get_workflow(workflow_id, include_tasks=False)
                current = workflow.get("variables") or {}
                for name, value in variables.items():
                    if isinstance(value, list) and isinstance(current.get(name), list):
                        variables[name] = [*current[name], *value]
            await self.client.update_variables(workflow_id, variables)
        except NotFoundError:
            raise ActionFailure(
                f"No workflow found with ID: {workflow_id}", transient=False
            ) from None
        return {"workflowId": workflow_id, "variables": variables}
