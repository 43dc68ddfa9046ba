"""A Conductor API test double: an in-process HTTP server with real state.

It answers the endpoints :class:`~conductor_events_handlers.client.ConductorClient` uses, with
Conductor's request and response shapes, and keeps workflows, tasks and variables, so a test
checks what a handler *did* (the task is COMPLETED, its output holds the message id) rather
than which calls were made. Unknown ids get Conductor's answers (404, or 204 for a task), and
faults can be injected: an HTTP status (500, 429, ...), delays, and a connection dropped after
the request was handled (the server did the work, the client got no answer), per method and
path. It serves plain HTTP, or HTTPS with a certificate the test provides.

Endpoints, each mirroring a Conductor resource (paths below ``/api``):

==============================================  ===============================================
``GET    /workflow/{workflowId}``               ``WorkflowResource.getExecutionStatus``
                                                (``includeTasks``, default true); 404 unknown
``POST   /workflow``                            ``WorkflowResource.startWorkflow`` with a
                                                ``StartWorkflowRequest``; text id; 404 for an
                                                unknown definition, 400 without a name
``DELETE /workflow/{workflowId}?reason=``       ``WorkflowResource.terminate``; 409 for a
                                                COMPLETED workflow, no-op for other ended ones
``POST   /workflow/{workflowId}/variables``     Orkes ``WorkflowResource.updateWorkflowState``:
                                                merges variables, answers the workflow
``GET    /tasks/{taskId}``                      ``TaskResource.getTask``; 204 when unknown
``POST   /tasks``                               ``TaskResource.updateTask`` with a
                                                ``TaskResult``; text task id; 400 without ids,
                                                404 unknown task, no-op for an ended task or
                                                workflow (as ``WorkflowExecutor.updateTask``)
``POST   /token``                               Orkes ``TokenResource``: ``{keyId, keySecret}``
                                                -> ``{token}``
``GET    /metadata/workflow``                   ``MetadataResource.getAll``: the registered
                                                definitions (``short=true``: without tasks)
``GET    /tasks/poll/batch/{taskType}``         ``TaskResource.batchPoll`` (``count``,
                                                ``timeout`` in ms, ``workerid``, ``domain``):
                                                a JSON list, ``[]`` when nothing came within
                                                the timeout; 400 for a timeout over 5000 ms
``GET    /tasks/poll/{taskType}``               ``TaskResource.poll``: one task, 204 for none
==============================================  ===============================================

Worker tasks. A task whose type is not a system type (``WAIT``, ``HUMAN``, ``EVENT``, ...; see
:data:`SYSTEM_TASK_TYPES`) is a worker task, as Conductor's ``SIMPLE`` tasks are: it is
scheduled ``SCHEDULED`` and queued under its type, or ``{domain}:{type}`` when the workflow's
``taskToDomain`` maps its type (or ``*``) to a domain, as ``QueueUtils.getQueueName`` names
queues. A poll takes up to ``count`` tasks from exactly that queue (a poll with a domain reads
only the domain's queue), waiting up to ``timeout`` ms for the first (long poll), and marks them
``IN_PROGRESS`` with ``workerId``, ``pollCount`` and ``startTime``. Its task definition
(:meth:`ConductorDouble.register_task_def`; Conductor's defaults otherwise: 3600 s response
timeout, 3 retries) applies as Conductor's decider applies it: a polled task not updated within
``responseTimeoutSeconds`` (plus the ``callbackAfterSeconds`` of its last IN_PROGRESS update)
becomes ``TIMED_OUT`` and, while retries are left, a copy is scheduled under a *new* task id
with ``retriedTaskId`` naming the old one and ``retryCount`` one higher; a ``FAILED`` update is
retried the same way; without retries left the workflow fails. An ``IN_PROGRESS`` update puts
the task back in its queue after its ``callbackAfterSeconds``. An update to a task that has
ended (``COMPLETED``, ``FAILED``, ``TIMED_OUT``, ...) is ignored and answered 200 with its id,
as ``WorkflowExecutor.updateTask`` does (it logs and records an "update conflict"). Task inputs
come from :meth:`ConductorDouble.register_workflow`'s ``inputs``, where a whole-string
``${workflow.input.NAME}`` is replaced by the workflow's input.

Its limits: nothing else of Conductor's API is there (no event handler, search, queue or admin
resources; any other path answers 404); no poll rate limits, isolation groups, execution
namespaces or domain fall-back (a domain with no active worker is not skipped, as Conductor
does for a list of domains); timeouts are checked every 50 ms; HTTP/1.1 with
``Content-Length`` bodies only (no chunked requests), head lines ended by CRLF (a bare LF is
not a line end; a malformed or unfinished request closes its connection unanswered); one event
loop, state in memory, gone when it stops; a toy decider (below) rather than Conductor's;
``idempotencyKey`` of a start request is not honoured (each ``POST /workflow`` starts a
workflow).

Errors use Conductor's ``ErrorResponse`` body: ``{status, message, instance, retryable}``.

Workflows follow their definition's task list: starting one schedules its first task
(``IN_PROGRESS``); completing a task schedules the next; completing the last completes the
workflow; a FAILED task fails it. That is enough of a decider to watch a handler move a
workflow along; it is not a workflow engine.

Use it in a test with ``async with ConductorDouble() as double:`` (it serves on 127.0.0.1 on a
free port, on the running event loop), or as a process:
``python -m conductor_events_handlers.testing.conductor_double --workflow NAME=task_ref[:TYPE],...
[--task-input REF=JSON]``, which prints its URL. It lives in the conformance kit's package
(``pip install 'conductor-events[testing]'``), not in the service's modules.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import signal
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

_TERMINAL_TASK = {
    "COMPLETED",
    "COMPLETED_WITH_ERRORS",
    "FAILED",
    "FAILED_WITH_TERMINAL_ERROR",
    "CANCELED",
    "TIMED_OUT",
    "SKIPPED",
}
_TERMINAL_WORKFLOW = {"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"}
_RESULT_STATUSES = {"IN_PROGRESS", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "COMPLETED"}
SYSTEM_TASK_TYPES = frozenset(
    {
        "WAIT",
        "HUMAN",
        "EVENT",
        "INLINE",
        "HTTP",
        "DECISION",
        "SWITCH",
        "FORK_JOIN",
        "FORK_JOIN_DYNAMIC",
        "JOIN",
        "DO_WHILE",
        "SUB_WORKFLOW",
        "START_WORKFLOW",
        "SET_VARIABLE",
        "TERMINATE",
        "JSON_JQ_TRANSFORM",
        "KAFKA_PUBLISH",
        "LAMBDA",
        "NOOP",
    }
)
"""Task types the double does not queue for workers (it leaves them ``IN_PROGRESS`` for a test
to complete); every other type is a worker task."""
MAX_POLL_TIMEOUT_MS = 5000
"""Conductor's ``ExecutionService.MAX_POLL_TIMEOUT_MS``."""
_SWEEP_INTERVAL = 0.05
_WORKFLOW_INPUT = re.compile(r"^\$\{workflow\.input\.([^}]+)\}$")


_ROUTES: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "POST": [
        (re.compile(r"/api/token"), "_token"),
        (re.compile(r"/api/workflow"), "_start"),
        (re.compile(r"/api/workflow/([^/]+)/variables"), "_variables"),
        (re.compile(r"/api/tasks"), "_update_task"),
    ],
    "GET": [
        (re.compile(r"/api/metadata/workflow"), "_definitions"),
        (re.compile(r"/api/workflow/([^/]+)"), "_get_workflow"),
        (re.compile(r"/api/tasks/poll/batch/([^/]+)"), "_batch_poll"),
        (re.compile(r"/api/tasks/poll/([^/]+)"), "_poll_one"),
        (re.compile(r"/api/tasks/([^/]+)"), "_get_task"),
    ],
    "DELETE": [(re.compile(r"/api/workflow/([^/]+)"), "_terminate")],
}
"""Method -> (whole-path pattern, handler method name), compiled once."""


def _now() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the double received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    """An injected fault: ``times`` matching requests get ``delay`` seconds of wait, then
    ``status`` (or their normal answer when ``status`` is ``None``). With ``drop``, the request
    is handled as usual (its effect happens) and the connection is closed instead of
    answering: a lost answer, as when a network path fails after the server took the request."""

    status: int | None
    times: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    delay: float = 0.0
    message: str = "injected failure"
    drop: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"


class HttpError(Exception):
    """An error answer, with Conductor's ``ErrorResponse`` body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class WorkflowDef:
    name: str
    version: int
    tasks: list[tuple[str, str]] = field(default_factory=list)
    """(referenceTaskName, taskType) in order."""
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each task's ``inputParameters`` by reference name."""


@dataclass
class TaskDef:
    """The parts of Conductor's ``TaskDef`` the double applies (Conductor's defaults)."""

    name: str
    response_timeout_seconds: float = 3600
    retry_count: int = 3


class ConductorDouble:
    """The double: state, fault injection, and the HTTP server.

    Args:
        token: require ``Authorization: Bearer <token>`` on every request.
        key_id, key_secret: require an Orkes token from ``POST /token`` in ``X-Authorization``.
        ssl_context: serve HTTPS with this server context (its certificate must name 127.0.0.1).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        key_id: str | None = None,
        key_secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.definitions: dict[tuple[str, int], WorkflowDef] = {}
        self.workflows: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.record_requests = True
        self.connections_opened = 0
        """TCP connections accepted so far (a client that reuses connections opens few)."""
        self._bearer = token
        self._key = (key_id, key_secret) if key_id is not None else None
        self._tokens: set[str] = set()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[None]] = set()
        self.port = 0
        self._seq = itertools.count(1)
        self._ssl = ssl_context
        self.task_defs: dict[str, TaskDef] = {}
        self._queues: dict[str, dict[str, float]] = {}
        """Queue name -> {task id: time it may be polled}, in the order tasks were queued."""
        self._polled: dict[str, float] = {}
        """Task id -> when its response timeout runs out (polled tasks not yet ended)."""
        self._delayed: dict[str, float] = {}
        """Task id -> when it may be polled, for queued tasks put back with a delay."""
        self._queued = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL, as ``conductor.server.url`` takes it."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/api"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def stop(self) -> None:
        if self._server is None:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        if self._serving:  # each ends at the end of file its closed connection gives it
            await asyncio.wait(list(self._serving), timeout=5)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- state for tests -------------------------------------------------------------------

    def register_workflow(
        self,
        name: str,
        tasks: Sequence[str | tuple[str, str]],
        version: int = 1,
        inputs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Define a workflow: its task reference names (type ``WAIT`` unless given as
        ``(ref, type)``) and, by reference name, each task's ``inputParameters``."""
        steps = [(t, "WAIT") if isinstance(t, str) else t for t in tasks]
        self.definitions[(name, version)] = WorkflowDef(name, version, steps, dict(inputs or {}))

    def register_task_def(
        self, name: str, *, response_timeout_seconds: float = 3600, retry_count: int = 3
    ) -> None:
        """Define a worker task type's ``responseTimeoutSeconds`` and ``retryCount``."""
        self.task_defs[name] = TaskDef(name, response_timeout_seconds, retry_count)

    def queue_depth(self, task_type: str, domain: str | None = None) -> int:
        """Tasks waiting in a worker task queue (``GET /tasks/queue/size``)."""
        return len(self._queues.get(_queue_name(task_type, domain), {}))

    def start_workflow(
        self,
        name: str,
        version: int | None = None,
        input: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        task_to_domain: dict[str, str] | None = None,
    ) -> str:
        """Start a workflow directly (as ``POST /workflow`` does) and return its id."""
        definition = self._definition(name, version)
        workflow_id = str(uuid.uuid4())
        now = _now()
        self.workflows[workflow_id] = {
            "workflowId": workflow_id,
            "workflowName": definition.name,
            "workflowVersion": definition.version,
            "status": "RUNNING",
            "input": dict(input or {}),
            "output": {},
            "variables": {},
            "correlationId": correlation_id,
            "taskToDomain": dict(task_to_domain or {}),
            "reasonForIncompletion": None,
            "createTime": now,
            "startTime": now,
            "updateTime": now,
            "endTime": 0,
            "tasks": [],
        }
        if definition.tasks:
            ref, kind = definition.tasks[0]
            self.schedule_task(workflow_id, ref, kind, input_data=self._task_input(definition, ref))
        return workflow_id

    def _task_input(self, definition: WorkflowDef, ref: str) -> dict[str, Any]:
        """A task's inputs for the workflow being decided, with ``${workflow.input.X}``."""
        return dict(definition.inputs.get(ref, {}))

    def schedule_task(
        self,
        workflow_id: str,
        ref: str,
        task_type: str = "WAIT",
        iteration: int = 0,
        input_data: dict[str, Any] | None = None,
    ) -> str:
        """Add a task to a workflow: a system task as ``IN_PROGRESS``, a worker task as
        ``SCHEDULED`` in its queue. A DO_WHILE iteration ``n > 0`` gets the reference name
        ``ref__n``, as Conductor names loop iterations."""
        workflow = self.workflows[workflow_id]
        task_id = str(uuid.uuid4())
        now = _now()
        resolved = {
            key: self._resolve(workflow, value) for key, value in (input_data or {}).items()
        }
        task = {
            "taskId": task_id,
            "taskType": task_type,
            "taskDefName": ref,
            "referenceTaskName": f"{ref}__{iteration}" if iteration else ref,
            "status": "IN_PROGRESS",
            "inputData": resolved,
            "outputData": {},
            "workflowInstanceId": workflow_id,
            "workflowType": workflow["workflowName"],
            "correlationId": workflow["correlationId"],
            "iteration": iteration,
            "seq": next(self._seq),
            "retryCount": 0,
            "scheduledTime": now,
            "startTime": now,
            "updateTime": now,
            "endTime": 0,
            "reasonForIncompletion": None,
        }
        if task_type not in SYSTEM_TASK_TYPES:
            definition = self._task_def(task_type)
            domain = workflow["taskToDomain"].get(task_type) or workflow["taskToDomain"].get("*")
            task.update(
                status="SCHEDULED",
                startTime=0,
                taskDefName=ref,
                domain=domain,
                pollCount=0,
                workerId=None,
                callbackAfterSeconds=0,
                responseTimeoutSeconds=definition.response_timeout_seconds,
                retriedTaskId=None,
            )
        self.tasks[task_id] = task
        workflow["tasks"].append(task)
        if task["status"] == "SCHEDULED":
            self._enqueue(task, 0.0)
        return task_id

    def _task_def(self, task_type: str) -> TaskDef:
        return self.task_defs.get(task_type) or TaskDef(task_type)

    @staticmethod
    def _resolve(workflow: dict[str, Any], value: Any) -> Any:
        if isinstance(value, str):
            match = _WORKFLOW_INPUT.match(value)
            if match:
                return workflow["input"].get(match.group(1))
        return value

    def _enqueue(self, task: dict[str, Any], delay: float) -> None:
        queue = self._queues.setdefault(_queue_name(task["taskType"], task.get("domain")), {})
        queue[task["taskId"]] = time.monotonic() + delay
        if delay > 0:
            self._delayed[task["taskId"]] = time.monotonic() + delay
        else:
            self._queued.set()

    def task(self, workflow_id: str, ref: str) -> dict[str, Any]:
        """The latest task of a workflow whose reference name is ``ref`` (exactly)."""
        found = [t for t in self.workflows[workflow_id]["tasks"] if t["referenceTaskName"] == ref]
        if not found:
            raise KeyError(f"workflow {workflow_id} has no task {ref}")
        task: dict[str, Any] = found[-1]
        return task

    def inject(
        self,
        status: int | None = 500,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        delay: float = 0.0,
        message: str = "injected failure",
        drop: bool = False,
    ) -> Fault:
        """Make the next ``times`` requests matching ``method`` and the ``path`` regex wait
        ``delay`` seconds and answer ``status`` (``None``: answer normally after the delay).
        ``drop``: handle them, then close the connection without an answer."""
        pattern = re.compile(path) if path else None
        fault = Fault(status, times, method, pattern, delay, message, drop)
        self.faults.append(fault)
        return fault

    def expire_tokens(self) -> None:
        """Forget every issued Orkes token, so the next request is answered 401."""
        self._tokens.clear()

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        regex = re.compile(pattern)
        return [r for r in self.requests if r.method == method and regex.search(r.path)]

    # -- HTTP ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        self._connections.add(writer)
        self.connections_opened += 1
        try:
            while True:
                # The request line and headers in one read (a read per line costs more than
                # the rest of a small request's handling).
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        raise ValueError("the connection ended inside a request head") from None
                    break  # the client closed the connection between requests
                lines = head.decode("latin-1").split("\r\n")
                if not lines[0].strip():
                    break
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                response = await self._handle(method, target, headers, body)
                if response is None:
                    break  # an injected dropped connection: the work is done, no answer
                writer.write(_encode_response(response))
                if writer.transport.get_write_buffer_size():
                    await writer.drain()  # only a slow reader leaves anything unsent
                if headers.get("connection", "").lower() == "close":
                    break
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> _Response | None:
        """The answer, or ``None`` when an injected fault drops the connection instead."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()} if parts.query else {}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return _error(400, "Invalid JSON in the request body")
        if self.record_requests:
            self.requests.append(RecordedRequest(method, path, query, headers, body))
        drop = False
        for fault in self.faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    return _error(fault.status, fault.message)
                drop = fault.drop
                break
        try:
            if path != "/api/token":
                self._authenticate(headers)
            response = await self._route(method, path, query, body)
        except HttpError as exc:
            response = _error(exc.status, exc.message, **exc.extra)
        return None if drop else response

    def _authenticate(self, headers: dict[str, str]) -> None:
        if self._bearer is not None and headers.get("authorization") != f"Bearer {self._bearer}":
            raise HttpError(401, "Unauthorized: a valid bearer token is required")
        if self._key is not None and headers.get("x-authorization") not in self._tokens:
            raise HttpError(401, "Token is invalid or expired", error="EXPIRED_TOKEN")

    async def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> _Response:
        for pattern, handler_name in _ROUTES.get(method, ()):
            match = pattern.fullmatch(path)
            if match:
                handler: Callable[..., Awaitable[_Response]] = getattr(self, handler_name)
                return await handler(*match.groups(), query=query, body=body)
        raise HttpError(404, f"No resource for {method} {path}")

    # -- resources -------------------------------------------------------------------------

    async def _token(self, *, query: dict[str, str], body: Any) -> _Response:
        if self._key is None:
            raise HttpError(404, "No resource for POST /api/token (authentication is off)")
        if not isinstance(body, dict) or (body.get("keyId"), body.get("keySecret")) != self._key:
            raise HttpError(401, "Invalid application key or secret")
        token = uuid.uuid4().hex
        self._tokens.add(token)
        return _json(200, {"token": token})

    async def _definitions(self, *, query: dict[str, str], body: Any) -> _Response:
        short = query.get("short", "false").lower() == "true"
        found = []
        for definition in self.definitions.values():
            entry: dict[str, Any] = {"name": definition.name, "version": definition.version}
            if not short:
                entry["tasks"] = [
                    {"name": ref, "taskReferenceName": ref, "type": kind}
                    for ref, kind in definition.tasks
                ]
            found.append(entry)
        return _json(200, found)

    def _definition(self, name: str, version: int | None) -> WorkflowDef:
        if version is None:
            versions = [v for (n, v) in self.definitions if n == name]
            if versions:
                return self.definitions[(name, max(versions))]
        elif (name, version) in self.definitions:
            return self.definitions[(name, version)]
        raise HttpError(404, f"No such workflow found by name: {name}, version: {version}")

    async def _start(self, *, query: dict[str, str], body: Any) -> _Response:
        if not isinstance(body, dict) or not body.get("name"):
            raise HttpError(
                400,
                "Validation failed, check below errors for detail.",
                validationErrors=[
                    {
                        "path": "startWorkflow.request.name",
                        "message": "Workflow name cannot be null or empty",
                    }
                ],
            )
        workflow_id = self.start_workflow(
            body["name"],
            body.get("version"),
            body.get("input") or {},
            body.get("correlationId"),
            body.get("taskToDomain"),
        )
        return _text(workflow_id)

    def _workflow(self, workflow_id: str) -> dict[str, Any]:
        workflow = self.workflows.get(workflow_id)
        if workflow is None:
            raise HttpError(404, f"No such workflow found by id: {workflow_id}")
        return workflow

    async def _get_workflow(
        self, workflow_id: str, *, query: dict[str, str], body: Any
    ) -> _Response:
        workflow = dict(self._workflow(workflow_id))
        if query.get("includeTasks", "true").lower() == "false":
            workflow["tasks"] = []
        return _json(200, workflow)

    async def _terminate(self, workflow_id: str, *, query: dict[str, str], body: Any) -> _Response:
        workflow = self._workflow(workflow_id)
        if workflow["status"] == "COMPLETED":
            raise HttpError(409, "Cannot terminate a COMPLETED workflow.")
        if workflow["status"] not in _TERMINAL_WORKFLOW:
            workflow["status"] = "TERMINATED"
            workflow["reasonForIncompletion"] = query.get("reason")
            workflow["endTime"] = workflow["updateTime"] = _now()
            for task in workflow["tasks"]:
                if task["status"] not in _TERMINAL_TASK:
                    task["status"] = "CANCELED"
        return _Response(200)

    async def _variables(self, workflow_id: str, *, query: dict[str, str], body: Any) -> _Response:
        workflow = self._workflow(workflow_id)
        if not isinstance(body, dict):
            raise HttpError(400, "The body must be a JSON object of variables")
        workflow["variables"].update(body)
        workflow["updateTime"] = _now()
        return _json(200, workflow)

    async def _get_task(self, task_id: str, *, query: dict[str, str], body: Any) -> _Response:
        task = self.tasks.get(task_id)
        if task is None:
            return _Response(204)
        return _json(200, task)

    async def _update_task(self, *, query: dict[str, str], body: Any) -> _Response:
        if not isinstance(body, dict):
            raise HttpError(400, "TaskResult cannot be null or empty.")
        errors = []
        if not body.get("workflowInstanceId"):
            errors.append(
                {
                    "path": "updateTask.taskResult.workflowInstanceId",
                    "message": "Workflow Id cannot be null or empty",
                }
            )
        if not body.get("taskId"):
            errors.append(
                {
                    "path": "updateTask.taskResult.taskId",
                    "message": "Task ID cannot be null or empty",
                }
            )
        status = body.get("status")
        if status not in _RESULT_STATUSES:
            errors.append(
                {
                    "path": "updateTask.taskResult.status",
                    "message": f"Invalid task status: {status}",
                }
            )
        if errors:
            raise HttpError(
                400, "Validation failed, check below errors for detail.", validationErrors=errors
            )
        task = self.tasks.get(body["taskId"])
        if task is None:
            raise HttpError(404, f"No such task found by id: {body['taskId']}")
        workflow = self.workflows[task["workflowInstanceId"]]
        if workflow["status"] in _TERMINAL_WORKFLOW or task["status"] in _TERMINAL_TASK:
            return _text(task["taskId"])  # Conductor ignores the update and says nothing
        now = _now()
        task["status"] = status
        task["outputData"] = dict(body.get("outputData") or {})
        task["reasonForIncompletion"] = body.get("reasonForIncompletion")
        task["updateTime"] = now
        if body.get("workerId"):
            task["workerId"] = body["workerId"]
        if "pollCount" in task:  # a worker task
            self._worker_task_updated(workflow, task, body)
        elif status in _TERMINAL_TASK:
            task["endTime"] = now
            self._decide(workflow, task)
        return _text(task["taskId"])

    def _worker_task_updated(
        self, workflow: dict[str, Any], task: dict[str, Any], body: dict[str, Any]
    ) -> None:
        """IN_PROGRESS goes back to its queue after ``callbackAfterSeconds`` (the response
        timeout counts from then); an end is decided, a failure retried while retries last."""
        self._polled.pop(task["taskId"], None)
        if task["status"] == "IN_PROGRESS":
            callback = float(body.get("callbackAfterSeconds") or 0)
            task["callbackAfterSeconds"] = callback
            self._enqueue(task, callback)
            return
        task["endTime"] = _now()
        self._end_worker_task(workflow, task)

    def _end_worker_task(self, workflow: dict[str, Any], task: dict[str, Any]) -> None:
        if task["status"] in ("FAILED", "TIMED_OUT") and self._retry(workflow, task):
            return
        self._decide(workflow, task)

    def _retry(self, workflow: dict[str, Any], task: dict[str, Any]) -> bool:
        """Schedule a copy of a failed or timed-out task under a new id, as
        ``DeciderService.retry`` does, while ``retryCount`` allows."""
        if task["retryCount"] >= self._task_def(task["taskType"]).retry_count:
            return False
        retry_id = self.schedule_task(
            workflow["workflowId"],
            task["taskDefName"],
            task["taskType"],
            task["iteration"],
            input_data=task["inputData"],
        )
        retried = self.tasks[retry_id]
        retried["retryCount"] = task["retryCount"] + 1
        retried["retriedTaskId"] = task["taskId"]
        task["retried"] = True
        return True

    async def _batch_poll(self, task_type: str, *, query: dict[str, str], body: Any) -> _Response:
        try:
            count = int(query.get("count", "1"))
            timeout_ms = int(query.get("timeout", "100"))
        except ValueError:
            raise HttpError(400, "count and timeout must be integers") from None
        if timeout_ms > MAX_POLL_TIMEOUT_MS:
            raise HttpError(400, "Long Poll Timeout value cannot be more than 5 seconds")
        tasks = await self._poll(task_type, query, count, timeout_ms / 1000)
        return _json(200, tasks)

    async def _poll_one(self, task_type: str, *, query: dict[str, str], body: Any) -> _Response:
        tasks = await self._poll(task_type, query, 1, 0.1)
        return _json(200, tasks[0]) if tasks else _Response(204)

    async def _poll(
        self, task_type: str, query: dict[str, str], count: int, timeout: float
    ) -> list[dict[str, Any]]:
        """Up to ``count`` tasks of the queue, waiting up to ``timeout`` seconds for one."""
        name = _queue_name(task_type, query.get("domain") or None)
        deadline = time.monotonic() + timeout
        while True:
            self._sweep()
            taken = self._take(name, count, query.get("workerid"))
            remaining = deadline - time.monotonic()
            if taken or remaining <= 0 or count <= 0:
                return taken
            self._queued.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queued.wait(), min(remaining, _SWEEP_INTERVAL))

    def _take(self, name: str, count: int, worker_id: str | None) -> list[dict[str, Any]]:
        queue = self._queues.get(name, {})
        now = time.monotonic()
        taken: list[dict[str, Any]] = []
        ready: list[str] = []
        for task_id, visible_at in queue.items():  # in the order they were queued
            if len(ready) >= count:
                break
            if visible_at <= now:
                ready.append(task_id)
        for task_id in ready:
            del queue[task_id]
            self._delayed.pop(task_id, None)
            task = self.tasks[task_id]
            workflow = self.workflows[task["workflowInstanceId"]]
            if task["status"] in _TERMINAL_TASK or workflow["status"] in _TERMINAL_WORKFLOW:
                continue  # as ExecutionService.poll: removed from the queue, not handed out
            stamp = _now()
            task["status"] = "IN_PROGRESS"
            task["workerId"] = worker_id
            task["pollCount"] += 1
            task["startTime"] = task["startTime"] or stamp
            task["updateTime"] = stamp
            timeout = task["responseTimeoutSeconds"] + task["callbackAfterSeconds"]
            self._polled[task_id] = now + timeout
            taken.append(dict(task))
        return taken

    def _sweep(self) -> None:
        """Time out polled tasks whose response timeout ran out, as the decider does."""
        now = time.monotonic()
        for task_id, expires in list(self._polled.items()):
            if expires > now:
                continue
            del self._polled[task_id]
            task = self.tasks[task_id]
            if task["status"] in _TERMINAL_TASK:
                continue
            for queue in self._queues.values():  # an IN_PROGRESS update may have queued it
                queue.pop(task_id, None)
            self._delayed.pop(task_id, None)
            workflow = self.workflows[task["workflowInstanceId"]]
            task["status"] = "TIMED_OUT"
            task["reasonForIncompletion"] = (
                f"responseTimeout: {task['responseTimeoutSeconds']} exceeded for the taskId: "
                f"{task_id} with Task Definition: {task['taskType']}"
            )
            task["endTime"] = task["updateTime"] = _now()
            if workflow["status"] not in _TERMINAL_WORKFLOW:
                self._end_worker_task(workflow, task)
        if any(visible_at <= now for visible_at in self._delayed.values()):
            self._queued.set()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            self._sweep()

    def _decide(self, workflow: dict[str, Any], task: dict[str, Any]) -> None:
        now = _now()
        if task["status"] != "COMPLETED":
            workflow["status"] = "FAILED"
            workflow["reasonForIncompletion"] = task.get("reasonForIncompletion")
            workflow["endTime"] = workflow["updateTime"] = now
            return
        if any(t["status"] not in _TERMINAL_TASK for t in workflow["tasks"]):
            return
        definition = self.definitions.get((workflow["workflowName"], workflow["workflowVersion"]))
        steps = definition.tasks if definition else []
        done = {t["taskDefName"] for t in workflow["tasks"]}
        remaining = [(ref, kind) for ref, kind in steps if ref not in done]
        if remaining:
            ref, kind = remaining[0]
            inputs = self._task_input(definition, ref) if definition else {}
            self.schedule_task(workflow["workflowId"], ref, kind, input_data=inputs)
            return
        workflow["status"] = "COMPLETED"
        workflow["output"] = dict(task["outputData"])
        workflow["endTime"] = workflow["updateTime"] = now


def _queue_name(task_type: str, domain: str | None) -> str:
    """``QueueUtils.getQueueName``: ``{domain}:{taskType}``, or the type without a domain."""
    return f"{domain}:{task_type}" if domain else task_type


def _json(status: int, value: Any) -> _Response:
    return _Response(status, json.dumps(value, separators=(",", ":")).encode())


def _text(value: str) -> _Response:
    return _Response(200, value.encode(), "text/plain")


def _error(status: int, message: str, **extra: Any) -> _Response:
    body = {
        "status": status,
        "message": message,
        "instance": "conductor-double",
        "retryable": status >= 500 or status == 429,
        **extra,
    }
    return _json(status, body)


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def _encode_response(response: _Response) -> bytes:
    reason = _REASONS.get(response.status, "Status")
    head = [f"HTTP/1.1 {response.status} {reason}"]
    if response.status != 204:
        head.append(f"Content-Type: {response.content_type}")
        head.append(f"Content-Length: {len(response.body)}")
    head.append("")
    head.append("")
    return "\r\n".join(head).encode("latin-1") + (b"" if response.status == 204 else response.body)


async def _main(args: argparse.Namespace) -> None:
    double = ConductorDouble()
    double.record_requests = False
    inputs: dict[str, dict[str, Any]] = {}
    for spec in args.task_input:
        ref, _, text = spec.partition("=")
        inputs[ref] = json.loads(text)
    for spec in args.workflow:
        name, _, refs = spec.partition("=")
        steps = [_step(r) for r in refs.split(",") if r]
        double.register_workflow(
            name, steps, inputs={ref: inputs[ref] for ref, _ in steps if ref in inputs}
        )
    await double.start(args.port)
    print(double.url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await double.stop()


def _step(spec: str) -> tuple[str, str]:
    """``REF`` (a WAIT task) or ``REF:TYPE``."""
    ref, _, kind = spec.partition(":")
    return ref, kind or "WAIT"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the double as a process: it prints its URL, then serves until SIGTERM."""
    parser = argparse.ArgumentParser(description="A Conductor REST API double on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--workflow",
        action="append",
        default=[],
        metavar="NAME=REF[:TYPE],...",
        help="define a workflow and its tasks: reference names, each with its type (WAIT "
        "unless given; a type that is not a system type is a worker task) (repeatable)",
    )
    parser.add_argument(
        "--task-input",
        action="append",
        default=[],
        metavar="REF=JSON",
        help="the inputParameters of the task REF, a JSON object in which a whole-string "
        "${workflow.input.NAME} is the workflow's input NAME (repeatable)",
    )
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
