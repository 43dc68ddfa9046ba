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
``GET  /metadata/workflow?short=true``         the start-up probe (any answer below 300 will do)
``GET  /tasks/poll/batch/{taskType}``          tasks for a worker (``count``, ``timeout`` ms,
                                               ``workerid``, ``domain``); a list
============================================  =================================================

The HTTP is aiohttp's client (a pool of kept-alive connections, its C-accelerated HTTP
parser). Proxies are ``conductor.server.proxy``, else the ``HTTP(S)_PROXY``/``NO_PROXY``
environment variables (read once, by aiohttp's ``trust_env`` rules); a private CA is
``ssl-ca-cert``. aiohttp rather than httpx: with 32 requests at once, as ``serve`` runs them,
httpx's connection pool (httpcore) cost about twenty times the CPU per message of this client
(see docs/performance.md), which would cap a core at a few hundred messages a second.

Failures are :class:`ConductorError` with ``transient`` set as the ack policy needs it: a
connection that could not be made, a timeout, HTTP 429 and 5xx are transient (try again
later); any other 4xx is not (the request itself is wrong: 404 unknown workflow, 400 invalid
body). Transient failures are retried here first (``conductor.server.retries``), but only where
sending the request twice does no harm: every request is idempotent except ``POST /workflow``,
which is retried only when its connection could not be opened. Once a start request may have
reached the server without an answer coming back, it is never sent again, by this client or
by a redelivery: the failure is not transient, so the message is dead-lettered with a reason
that says the workflow may have started.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import aiohttp
from yarl import URL

from conductor_events import __version__
from conductor_events.errors import ConductorEventsError

if TYPE_CHECKING:
    from conductor_events_handlers.settings import ServerSettings


class ConductorError(ConductorEventsError):
    """A Conductor request that failed; ``transient`` says whether trying later may succeed."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status


class ConductorSetupError(ConductorEventsError):
    """``conductor.server.*`` names something that cannot be used (an unreadable CA file)."""

    exit_code = 2


class TokenRefusedError(ConductorError):
    """The Orkes ``POST /token`` exchange of the application key failed."""


class NotFoundError(ConductorError):
    """The workflow or task does not exist (HTTP 404, or Conductor's 204 for a task)."""

    def __init__(self, message: str, status: int | None = 404) -> None:
        super().__init__(message, transient=False, status=status)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response read whole: the status, the body and the request it answers."""

    status: int
    body: bytes
    reason: str
    request: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _server_message(answer: Answer) -> str:
    """The ``message`` of Conductor's error body, else the start of the body."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = answer.text.strip()
    return text[:200] if text else answer.reason


_NOTHING_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
"""Failures to open a connection (refused, DNS, TLS, proxy, connect timeout): no byte of the
request left, so sending it again is always safe."""

_FIRST_BACKOFF = 0.2
_MAX_BACKOFF = 2.0


class OrkesToken:
    """Orkes application keys: ``POST /token`` with ``{keyId, keySecret}`` gives a token that
    goes in the ``X-Authorization`` header. The token is renewed after ``ttl`` seconds, and at
    once when the server answers 401; concurrent requests share one exchange."""

    def __init__(
        self, token_url: str, key: str, secret: str, ttl: float, proxy: str | None = None
    ) -> None:
        self.token_url = token_url
        self._proxy = proxy
        self._key = key
        self._secret = secret
        self.ttl = ttl
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self, session: aiohttp.ClientSession, *, stale: str | None = None) -> str:
        """The token to send; ``stale``: the one the server just refused, to be replaced."""
        used = self._token
        if used is None or used == stale or time.monotonic() >= self._expires:
            async with self._lock:
                if self._token is None or self._token == used or time.monotonic() >= self._expires:
                    await self._exchange(session)
        assert self._token is not None
        return self._token

    async def _exchange(self, session: aiohttp.ClientSession) -> None:
        body = {"keyId": self._key, "keySecret": self._secret}
        async with session.post(
            self.token_url, json=body, proxy=self._proxy, allow_redirects=False
        ) as response:
            answer = Answer(response.status, await response.read(), response.reason or "", "")
        if answer.status != 200:
            raise TokenRefusedError(
                f"POST /token: the server refused the application key {self._key!r}: "
                f"HTTP {answer.status}: {_server_message(answer)}",
                transient=answer.status == 429 or answer.status >= 500,
                status=answer.status,
            )
        try:
            token = answer.json()["token"]
        except (ValueError, KeyError, TypeError):
            raise TokenRefusedError(
                "POST /token: the answer has no token", transient=False, status=200
            ) from None
        self._token = str(token)
        self._expires = time.monotonic() + self.ttl


def _orkes_token(settings: ServerSettings) -> OrkesToken | None:
    """The Orkes key exchange ``conductor.server.auth.*`` asks for, if any."""
    auth = settings.auth
    if auth.key is not None and auth.secret is not None:
        url = settings.url.rstrip("/") + "/token"
        proxy = (
            settings.proxy.get_secret_value()
            if settings.proxy is not None
            else _environment_proxy(settings.url)
        )
        return OrkesToken(
            url, auth.key, auth.secret.get_secret_value(), auth.token_ttl.total_seconds(), proxy
        )
    return None


def _ssl_verify(settings: ServerSettings) -> ssl.SSLContext | bool:
    """What the server's certificate is checked against: a private CA file, or the system's
    trust store (OpenSSL's defaults, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` included), or
    nothing when ``verify-ssl`` is off."""
    if not settings.verify_ssl:
        return False
    if settings.ssl_ca_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ssl_ca_cert)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConductorSetupError(
            f"conductor.server.ssl-ca-cert: cannot use {settings.ssl_ca_cert} as CA "
            f"certificates: {reason}"
        ) from None


def _without_credentials(url: str) -> str:
    """A proxy URL as it may be shown: scheme, host and port, never a user or password."""
    parsed = URL(url)
    port = f":{parsed.port}" if parsed.explicit_port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def _environment_proxy(url: str) -> str | None:
    """The proxy the standard environment variables give for ``url`` (``HTTPS_PROXY`` or
    ``HTTP_PROXY`` by its scheme, else ``ALL_PROXY``; none when ``NO_PROXY`` names its host),
    read once: the same rules aiohttp's ``trust_env`` applies, without its per-request lookups
    on a thread."""
    parsed = URL(url)
    if parsed.host is None or urllib.request.proxy_bypass(parsed.host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parsed.scheme) or proxies.get("all")


def _auth_kind(settings: ServerSettings) -> str:
    """The kind of credential sent, as a message may name it (never its value)."""
    if settings.auth.token is not None:
        return "a bearer token (conductor.server.auth.token)"
    if settings.auth.key is not None:
        return f"the application key {settings.auth.key!r} (conductor.server.auth.key)"
    return "no credentials (conductor.server.auth.* is not set)"


class ConductorClient:
    """Conductor's REST API over one pool of kept-alive connections. Use ``async with`` or
    :meth:`aclose`; the connections are opened on the first request.

    Args:
        settings: ``conductor.server.*``.

    Raises:
        ConductorSetupError: the CA file cannot be read.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.base_url = settings.url.rstrip("/")
        self.retries = settings.retries
        self._auth_kind = _auth_kind(settings)
        self._verify = _ssl_verify(settings)
        self.proxy: str | None
        """Where requests go through, as messages name it (never with a password)."""
        if settings.proxy is not None:
            self._proxy_url: str | None = settings.proxy.get_secret_value()
            self.proxy = f"the proxy {_without_credentials(self._proxy_url)}"
        else:
            self._proxy_url = _environment_proxy(self.base_url)
            self.proxy = (
                f"the proxy {_without_credentials(self._proxy_url)} (from the environment)"
                if self._proxy_url is not None
                else None
            )
        self._max_connections = settings.max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.connect_timeout.total_seconds(),
            sock_read=settings.read_timeout.total_seconds(),
        )
        self._headers = {
            "User-Agent": f"conductor-events/{__version__}",
            "Accept": "application/json",
        }
        if settings.auth.token is not None:
            self._headers["Authorization"] = f"Bearer {settings.auth.token.get_secret_value()}"
        self._orkes = _orkes_token(settings)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._verify),
                headers=self._headers,
                timeout=self._timeout,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        if response.status == 204 or not response.body:
            return None
        return self._json_object(response)

    async def update_task(self, task_result: Mapping[str, Any]) -> str:
        """``POST /tasks`` with a ``TaskResult``; returns the task id. Idempotent: the update
        is keyed by the task id, and Conductor ignores an update to a task that has ended."""
        response = await self._request("POST", "/tasks", json=dict(task_result))
        return response.text

    async def start_workflow(self, request: Mapping[str, Any]) -> str:
        """``POST /workflow`` with a ``StartWorkflowRequest``; returns the new workflow's id.

        Not idempotent: each request that reaches the server starts a workflow, so it is sent
        again only when its connection could not be opened."""
        response = await self._request("POST", "/workflow", json=dict(request), idempotent=False)
        workflow_id = response.text.strip()
        if not workflow_id:
            raise ConductorError(
                "POST /workflow: the server answered without a workflow id",
                transient=False,
                status=response.status,
            )
        return workflow_id

    async def terminate_workflow(self, workflow_id: str, reason: str | None) -> None:
        """``DELETE /workflow/{workflowId}?reason=`` (idempotent: an ended workflow stays
        ended)."""
        params = {"reason": reason} if reason else None
        await self._request("DELETE", f"/workflow/{_segment(workflow_id)}", params=params)

    async def update_variables(
        self, workflow_id: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``POST /workflow/{workflowId}/variables`` (Orkes): merge variables into the
        workflow's; returns the workflow. Idempotent: the same values merged twice are the
        same values."""
        response = await self._request(
            "POST", f"/workflow/{_segment(workflow_id)}/variables", json=dict(variables)
        )
        return self._json_object(response) if response.body else {}

    async def poll_tasks(
        self,
        task_type: str,
        *,
        count: int,
        timeout_ms: int,
        worker_id: str,
        domain: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /tasks/poll/batch/{taskType}``: up to ``count`` tasks, the server waiting up to
        ``timeout_ms`` for the first (Conductor allows at most 5000). Each task returned is
        ``IN_PROGRESS`` and this worker's until updated or timed out by the server.

        Sent once, never retried here: a poll whose answer was lost may have taken tasks, and
        polling again cannot return them (they come back by their response timeout), so the
        caller simply polls again after its backoff."""
        params = {"count": str(count), "timeout": str(timeout_ms), "workerid": worker_id}
        if domain:
            params["domain"] = domain
        response = await self._request(
            "GET", f"/tasks/poll/batch/{_segment(task_type)}", params=params, retries=0
        )
        if response.status == 204 or not response.body:
            return []
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, list) or not all(isinstance(task, dict) for task in body):
            raise ConductorError(
                f"{response.request}: expected a JSON list of tasks in the answer",
                transient=False,
                status=response.status,
            )
        return body

    async def probe(self) -> str | None:
        """One request that needs the URL, the network path and the credentials to be right:
        ``GET /metadata/workflow?short=true`` (Conductor and Orkes both serve it, behind
        authentication; ``short`` keeps Orkes' answer small). Returns ``None`` when it
        succeeded, else a one-line description of what is wrong, naming the URL and never a
        secret."""
        path = "/metadata/workflow"
        where = f"GET {self.base_url}{path}"
        try:
            await self._request("GET", path, params={"short": "true"}, retries=0)
        except ConductorError as exc:
            if exc.status in (401, 403):
                if isinstance(exc, TokenRefusedError):
                    where = f"POST {self.base_url}/token"
                return (
                    f"Conductor at {self.base_url} refused the credentials: {where} answered "
                    f"HTTP {exc.status} to {self._auth_kind}"
                )
            if exc.status == 404:
                return (
                    f"Conductor at {self.base_url} has no REST API there: {where} answered "
                    "HTTP 404; check the base path of conductor.server.url (Conductor's ends "
                    "in /api)"
                )
            return f"Conductor at {self.base_url} is not usable: {exc.message}"
        return None

    # -- plumbing --------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
        retries: int | None = None,
    ) -> Answer:
        """Send a request; transient failures are sent again up to ``retries`` times (the
        client's setting by default) when that is safe: always when nothing was sent, and
        otherwise only for an ``idempotent`` request."""
        where = f"{method} {path}"
        left = self.retries if retries is None else retries
        delay = _FIRST_BACKOFF
        while True:
            try:
                answer = await self._send(method, path, json, params)
            except (aiohttp.ClientError, TimeoutError) as exc:
                nothing_sent = isinstance(exc, _NOTHING_SENT)
                if left > 0 and (idempotent or nothing_sent):
                    left -= 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_BACKOFF)
                    continue
                raise self._transport_failure(where, exc, idempotent or nothing_sent) from None
            status = answer.status
            if status < 300:
                return answer
            message = f"{where}: HTTP {status}: {_server_message(answer)}"
            if status == 404:
                raise NotFoundError(message)
            transient = status == 429 or status >= 500
            if transient and idempotent and left > 0:
                left -= 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            raise ConductorError(message, transient=transient, status=status)

    async def _send(
        self, method: str, path: str, json: Any, params: Mapping[str, str] | None
    ) -> Answer:
        """One request, with the Orkes token when there is one (renewed and sent once more
        when the server answers 401: the token expired)."""
        session = self._open()
        headers: dict[str, str] = {}
        if self._orkes is not None:
            headers["X-Authorization"] = await self._orkes.get(session)
        answer = await self._exchange(session, method, path, json, params, headers)
        if answer.status == 401 and self._orkes is not None:
            refused = headers["X-Authorization"]
            headers["X-Authorization"] = await self._orkes.get(session, stale=refused)
            answer = await self._exchange(session, method, path, json, params, headers)
        return answer

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> Answer:
        async with session.request(
            method,
            self.base_url + path,
            json=json,
            params=params,
            headers=headers,
            proxy=self._proxy_url,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            return Answer(response.status, body, response.reason or "", f"{method} {path}")

    def _transport_failure(
        self, where: str, exc: aiohttp.ClientError | TimeoutError, safe: bool
    ) -> ConductorError:
        """The error for a request that got no answer. ``safe``: sending it again later does
        no harm, so the failure is transient; otherwise the request may have reached the
        server and must not be repeated."""
        through = f" through {self.proxy}" if self.proxy else ""
        if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ConnectionTimeoutError):
            problem = (
                f"Conductor at {self.base_url}{through} did not answer in time "
                f"({type(exc).__name__})"
            )
        else:
            problem = (
                f"cannot reach Conductor at {self.base_url}{through}: "
                f"{type(exc).__name__}: {exc or 'connection failed'}"
            )
        if safe:
            return ConductorError(f"{where}: {problem}", transient=True)
        return ConductorError(
            f"{where}: {problem}; the request may have reached the server, and it is not "
            "idempotent, so it is not sent again (check whether it took effect)",
            transient=False,
        )

    @staticmethod
    def _json_object(answer: Answer) -> dict[str, Any]:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ConductorError(
                f"{answer.request}: expected a JSON object in the answer",
                transient=False,
                status=answer.status,
            )
        return body
