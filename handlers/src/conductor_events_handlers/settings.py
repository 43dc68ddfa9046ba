"""``conductor.server.*`` and ``conductor.event-handlers.*``: the settings event handlers use.

``conductor.server.*`` says where the Conductor server is, how to reach it (proxy, TLS
trust, timeouts, retries) and how to authenticate: no authentication, a bearer token
(``auth.token``), or an Orkes application key and secret (``auth.key`` and ``auth.secret``)
exchanged for a token. The proxy and TLS keys are named as the Conductor Python SDK names them
(``proxy``, ``ssl_ca_cert``, ``verify_ssl``). ``conductor.event-handlers.*`` holds
the handler files, the condition engine's limits, the retry policy and the execution records.
"""

from __future__ import annotations

import enum
import re
from datetime import timedelta
from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from conductor_events.config.durations import Seconds
from conductor_events.config.settings import SectionSettings

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_size(value: object) -> int:
    """A Spring ``DataSize``: ``512KB``, ``32MB``, ``1GB``, or a bare number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            number, unit = match.groups()
            return int(number) * _SIZE_UNITS[unit.upper() if unit else None]
    raise ValueError(f"expected a size such as 512KB, 32MB or a number of bytes, got {value!r}")


def _split_list(value: object) -> object:
    """A comma-separated property value as a list; lists pass through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Size = Annotated[int, BeforeValidator(parse_size)]
"""A size in bytes, written as Spring writes one (``32MB``) or as a bare number of bytes."""

NameList = Annotated[list[str], BeforeValidator(_split_list)]
"""A comma-separated list of names."""


class _Nested(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerAuthSettings(_Nested):
    """``conductor.server.auth.*``: none, a bearer token, or an Orkes key and secret."""

    token: SecretStr | None = Field(
        default=None,
        description="Bearer token sent as `Authorization: Bearer <token>`.",
    )
    key: str | None = Field(
        default=None,
        description="Orkes application key id, exchanged with `auth.secret` for a token at "
        "`POST /api/token`; the token goes in the `X-Authorization` header.",
    )
    secret: SecretStr | None = Field(
        default=None, description="Orkes application key secret (with `auth.key`)."
    )
    token_ttl: Seconds = Field(
        default=timedelta(minutes=45),
        description="How long an Orkes token is used before it is exchanged again (it is also "
        "renewed at once when the server answers 401). Bare numbers are seconds.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> ServerAuthSettings:
        if self.token is not None and (self.key is not None or self.secret is not None):
            raise ValueError("set either auth.token or auth.key with auth.secret, not both")
        if (self.key is None) != (self.secret is None):
            raise ValueError("auth.key and auth.secret must be set together")
        return self


class ServerSettings(SectionSettings):
    """``conductor.server.*``: the Conductor server that handler actions are sent to."""

    section: ClassVar[str] = "conductor.server"

    url: str = Field(
        default="http://localhost:8080/api",
        description="Base URL of the server's REST API, including `/api` (as Conductor's "
        "SDKs spell it).",
    )
    auth: ServerAuthSettings = Field(default_factory=ServerAuthSettings)
    connect_timeout: Seconds = Field(
        default=timedelta(seconds=5),
        description="How long opening a connection may take. Bare numbers are seconds.",
    )
    read_timeout: Seconds = Field(
        default=timedelta(seconds=30),
        description="How long the server may take to answer a request. Bare numbers are seconds.",
    )
    max_connections: int = Field(
        default=50, ge=1, description="Connections kept open to the server at most."
    )
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Times a request is sent again after a transient failure (connection "
        "lost, read timeout, HTTP 429 or 5xx), after 0.2s, then twice as long each time; only "
        "idempotent requests are, and `start_workflow` only when the connection could not "
        "be opened (nothing was sent).",
    )
    proxy: SecretStr | None = Field(
        default=None,
        description="HTTP proxy for every request to the server, e.g. "
        "`http://proxy.example.com:3128` (it may hold a user and password, so it is masked). "
        "Unset: the `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` environment "
        "variables apply.",
    )
    ssl_ca_cert: str | None = Field(
        default=None,
        description="PEM file of the certificate authorities to trust for an `https://` "
        "server (a private CA), instead of the system's trust store.",
    )
    verify_ssl: bool = Field(
        default=True,
        description="Check the server's TLS certificate; `false` only for a test server.",
    )
    require_at_start: bool = Field(
        default=False,
        description="`serve`: exit with status 2 when the server cannot be used at start-up "
        "(unreachable, credentials refused, wrong base path), instead of logging a warning and "
        "going on (`--require-conductor`).",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError("url must start with http:// or https:// and a host")
        return url

    @field_validator("proxy")
    @classmethod
    def _check_proxy(cls, proxy: SecretStr | None) -> SecretStr | None:
        if proxy is not None and not re.match(r"^https?://[^/\s]+", proxy.get_secret_value()):
            raise ValueError("proxy must start with http:// or https:// and a host")
        return proxy


class NonTransientPolicy(enum.StrEnum):
    """What happens to a message whose action failed for good (404, 400, ...)."""

    DEAD_LETTER = "dead-letter"
    ACK = "ack"


class ScriptSettings(_Nested):
    """``conductor.event-handlers.script.*``: limits of the JavaScript condition engine."""

    timeout: Seconds = Field(
        default=timedelta(seconds=4),
        description="Longest a condition may run before it is stopped and the message fails "
        "(Conductor's CONDUCTOR_SCRIPT_MAX_EXECUTION_SECONDS). Bare numbers are seconds.",
    )
    memory_limit: Size = Field(
        default=32 << 20,
        ge=1 << 20,
        description="Memory each engine may allocate, e.g. 32MB; bare numbers are bytes.",
    )
    engines: int = Field(
        default=0,
        ge=0,
        le=256,
        description="`serve`: JavaScript engines evaluating conditions at once, each on a "
        "thread of its own; one event's messages use at most all but one of them, so one "
        "event's slow conditions cannot hold up another's. `0`: one per CPU core, at least 2.",
    )


class RetrySettings(_Nested):
    """``conductor.event-handlers.retry.*``: redelivery after transient failures."""

    max_attempts: int = Field(
        default=5,
        ge=1,
        description="Deliveries of one message before a transient failure dead-letters it.",
    )
    initial_backoff: Seconds = Field(
        default=timedelta(seconds=1),
        description="Delay before the second delivery; doubled for each later one. Bare "
        "numbers are seconds.",
    )
    max_backoff: Seconds = Field(
        default=timedelta(minutes=5),
        description="Longest delay between deliveries. Bare numbers are seconds.",
    )


class ExecutionStoreSettings(_Nested):
    """``conductor.event-handlers.executions.*``: where execution records are kept."""

    path: str = Field(
        default="conductor-events-executions.db",
        description="SQLite file of execution records; relative paths are from the current "
        "directory.",
    )
    retention: Seconds = Field(
        default=timedelta(days=7),
        description="Records older than this are deleted. Bare numbers are seconds.",
    )
    lease: Seconds = Field(
        default=timedelta(minutes=5),
        description="How long an IN_PROGRESS record keeps another consumer from running the "
        "same action; after it, the action is taken over (its first runner died). Bare numbers "
        "are seconds.",
    )


class ReconnectSettings(_Nested):
    """``conductor.event-handlers.reconnect.*``: how ``serve`` retries a queue it lost."""

    initial_backoff: Seconds = Field(
        default=timedelta(seconds=1),
        description="`serve`: delay before a listener first retries a queue it could not "
        "reach, or restarts after a crash; doubled for each later try, with jitter. Bare "
        "numbers are seconds.",
    )
    max_backoff: Seconds = Field(
        default=timedelta(seconds=60),
        description="`serve`: longest delay between a listener's tries. Bare numbers are seconds.",
    )


class EventHandlerSettings(SectionSettings):
    """``conductor.event-handlers.*``: how handlers are loaded and run."""

    section: ClassVar[str] = "conductor.event-handlers"

    definitions: NameList = Field(
        default_factory=list,
        description="Handler definition files or directories of `*.json` files, comma-separated.",
    )
    script: ScriptSettings = Field(default_factory=ScriptSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    executions: ExecutionStoreSettings = Field(default_factory=ExecutionStoreSettings)
    non_transient_failure: NonTransientPolicy = Field(
        default=NonTransientPolicy.DEAD_LETTER,
        description="`dead-letter`: a message whose action failed for good goes to the "
        "dead-letter destination with the reason. `ack`: Conductor's behaviour, the message is "
        "acked and only the execution record keeps the failure.",
    )
    allowed_env: NameList = Field(
        default_factory=list,
        description="Environment variables that `${NAME}` in a template may read, "
        "comma-separated. Empty (the default): templates read only the message.",
    )
    concurrency: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="`serve`: messages of one event handled at once (each event has its own "
        "listener and limit).",
    )
    reload_interval: Seconds = Field(
        default=timedelta(seconds=2),
        description="`serve`: how often handler files are checked for changes; `0` turns "
        "the check off (SIGHUP still reloads). Bare numbers are seconds.",
    )
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    extend_interval: Seconds = Field(
        default=timedelta(seconds=10),
        description="While a message is in hand (waiting for a condition engine or running its "
        "handlers), its visibility timeout or lock is extended every this long, by three times "
        "this, so the queue does not deliver it again meanwhile; keep it below half the "
        "queue's visibility timeout. `0` turns extension off. Bare numbers are seconds.",
    )
