"""An async client for the parts of Conductor's REST API that handler actions use.

Endpoints and shapes are Conductor's (``TaskResource``, ``WorkflowResource``; the variables
endpoint is Orkes Conductor's ``WorkflowResource``), relative to ``conductor.server.url``
(which ends in ``/api``):

============================================  =================================================
``GET  /workflow/{workflowId}?includeTasks``   the workflow with its tasks (404 when unknown)
``GET  /tasks/{taskId}``                       a task; Conductor answers 204 when it is unknown
``POST /tasks``                                a ``TaskResult`` body; answers the task id (text)
``POST /workflow``                             a ``StartWorkflowRequest``; answers the id (text)
``DELETE /workflow/{workflowId}?reason=``      terminate (409 when it already ended)
``POST /workflow/{workflowId}/variables``      Orkes: merge variables; answers the workflow
``POST /token``                                Orkes: ``{keyId, keySecret}`` -> ``{token}``
============================================  =================================================

Failures are :class:`ConductorError` with ``transient`` set as the ack policy needs it: a
connection that could not be made, a timeout, HTTP 429 and 5xx are transient (try again
later); any other 4xx is not (the request itself is wrong: 404 unknown workflow, 400 invalid
body). One :class:`ConductorClient` keeps its connections open and reuses them, through a
lean keep-alive transport (:mod:`~conductor_events.handlers.transport`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import httpx

from conductor_events import __version__
from conductor_events.errors import ConductorEventsError
from conductor_events.handlers.transport import StreamTransport

if TYPE_CHECKING:
    from conductor_events.handlers.settings import ServerSettings


class ConductorError(ConductorEventsError):
    """A Conductor request that failed; ``transient`` says whether trying later may succeed."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status


class NotFoundError(ConductorError):
    """The workflow or task does not exist (HTTP 404, or Conductor's 204 for a task)."""

    def __init__(self, message: str, status: int | None = 404) -> None:
        super().__init__(message, transient=False, status=status)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _server_message(response: httpx.Response) -> str:
    """The ``message`` of Conductor's error body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = response.text.strip()
    return text[:200] if text else response.reason_phrase


class OrkesKeyAuth(httpx.Auth):
    """Orkes application keys: ``POST /token`` with ``{keyId, keySecret}`` gives a token that
    goes in the ``X-Authorization`` header. The token is renewed after ``ttl`` seconds, and at
    once when the server answers 401."""

    def __init__(self, token_url: str, key: str, secret: str, ttl: float) -> None:
        self.token_url = token_url
        self._key = key
        self._secret = secret
        self.ttl = ttl
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST", self.token_url, json={"keyId": self._key, "keySecret": self._secret}
        )

    async def _exchange(self, response: httpx.Response) -> None:
        await response.aread()
        if response.status_code != 200:
            transient = response.status_code == 429 or response.status_code >= 500
            raise ConductorError(
                f"POST /token: the server refused the application key {self._key!r}: "
                f"HTTP {response.status_code}: {_server_message(response)}",
                transient=transient,
                status=response.status_code,
            )
        try:
            token = response.json()["token"]
        except (ValueError, KeyError, TypeError):
            raise ConductorError(
                "POST /token: the answer has no token", transient=False, status=200
            ) from None
        self._token = str(token)
        self._expires = time.monotonic() + self.ttl

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = self._token
        if used is None or time.monotonic() >= self._expires:
            async with self._lock:
                if self._token is None or self._token == used or time.monotonic() >= self._expires:
                    await self._exchange((yield self._token_request()))
        request.headers["X-Authorization"] = self._token or ""
        response = yield request
        if response.status_code == 401:
            used = self._token
            async with self._lock:
                if self._token == used:
                    await self._exchange((yield self._token_request()))
            request.headers["X-Authorization"] = self._token or ""
            yield request


def build_auth(settings: ServerSettings) -> httpx.Auth | None:
    """The authentication ``conductor.server.auth.*`` asks for, if any."""
    auth = settings.auth
    if auth.key is not None and auth.secret is not None:
        url = settings.url.rstrip("/") + "/token"
        return OrkesKeyAuth(
            url, auth.key, auth.secret.get_secret_value(), auth.token_ttl.total_seconds()
        )
    return None


class ConductorClient:
    """Conductor's REST API over one pooled HTTP connection set. Use ``async with`` or
    :meth:`aclose`.

    Args:
        settings: ``conductor.server.*``.
        transport: an httpx transport instead of the default
            :class:`~conductor_events.handlers.transport.StreamTransport` (``httpx.MockTransport``
            in tests, or ``httpx.AsyncHTTPTransport()`` for proxies and HTTP/2).
    """

    def __init__(
        self, settings: ServerSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = settings.url.rstrip("/")
        headers = {"User-Agent": f"conductor-events/{__version__}", "Accept": "application/json"}
        if settings.auth.token is not None:
            headers["Authorization"] = f"Bearer {settings.auth.token.get_secret_value()}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            auth=build_auth(settings),
            timeout=httpx.Timeout(
                settings.read_timeout.total_seconds(),
                connect=settings.connect_timeout.total_seconds(),
            ),
            transport=transport or StreamTransport(settings.max_connections),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the endpoints ---------------------------------------------------------------------

    async def get_workflow(self, workflow_id: str, *, include_tasks: bool = True) -> dict[str, Any]:
        """``GET /workflow/{workflowId}``: the workflow (``Workflow``), with its tasks."""
        response = await self._request(
            "GET",
            f"/workflow/{_segment(workflow_id)}",
            params={"includeTasks": "true" if include_tasks else "false"},
        )
        return self._json_object(response)

    async def get_task(self, task_id: str) -> dict[str, Any] | None:
        """``GET /tasks/{taskId}``: the task, or ``None`` (Conductor answers 204 for unknown)."""
        response = await self._request("GET", f"/tasks/{_segment(task_id)}")
        if response.status_code == 204 or not response.content:
            return None
        return self._json_object(response)

    async def update_task(self, task_result: Mapping[str, Any]) -> str:
        """``POST /tasks`` with a ``TaskResult``; returns the task id."""
        response = await self._request("POST", "/tasks", json=dict(task_result))
        return response.text

    async def start_workflow(self, request: Mapping[str, Any]) -> str:
        """``POST /workflow`` with a ``StartWorkflowRequest``; returns the new workflow's id."""
        response = await self._request("POST", "/workflow", json=dict(request))
        workflow_id = response.text.strip()
        if not workflow_id:
            raise ConductorError(
                "POST /workflow: the server answered without a workflow id",
                transient=False,
                status=response.status_code,
            )
        return workflow_id

    async def terminate_workflow(self, workflow_id: str, reason: str | None) -> None:
        """``DELETE /workflow/{workflowId}?reason=``."""
        params = {"reason": reason} if reason else None
        await self._request("DELETE", f"/workflow/{_segment(workflow_id)}", params=params)

    async def update_variables(
        self, workflow_id: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``POST /workflow/{workflowId}/variables`` (Orkes): merge variables into the
        workflow's; returns the workflow."""
        response = await self._request(
            "POST", f"/workflow/{_segment(workflow_id)}/variables", json=dict(variables)
        )
        return self._json_object(response) if response.content else {}

    # -- plumbing --------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        where = f"{method} {path}"
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TimeoutException as exc:
            raise ConductorError(
                f"{where}: Conductor at {self.base_url} did not answer in time "
                f"({type(exc).__name__})",
                transient=True,
            ) from None
        except httpx.TransportError as exc:
            raise ConductorError(
                f"{where}: cannot reach Conductor at {self.base_url}: "
                f"{type(exc).__name__}: {exc or 'connection failed'}",
                transient=True,
            ) from None
        status = response.status_code
        if status < 300:
            return response
        message = f"{where}: HTTP {status}: {_server_message(response)}"
        if status == 404:
            raise NotFoundError(message)
        raise ConductorError(message, transient=status == 429 or status >= 500, status=status)

    @staticmethod
    def _json_object(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ConductorError(
                f"{response.request.method} {response.request.url.path}: expected a JSON "
                "object in the answer",
                transient=False,
                status=response.status_code,
            )
        return body
