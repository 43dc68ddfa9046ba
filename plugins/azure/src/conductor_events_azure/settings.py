"""``conductor.event-queues.azure.*``: connections, receive and retry settings.

Imports pydantic and the core only, so loading the plugin stays cheap.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from conductor_events.config import QueueSettings, Seconds

Credential = Literal["default", "managed-identity", "azure-cli", "environment", "workload-identity"]

REQUIRED_PARTS = ("Endpoint", "SharedAccessKeyName", "SharedAccessKey")


def _comma_list(value: object) -> object:
    """``a, b`` as written in a properties file, or a list given in code."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _blank_is_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, SecretStr) and not value.get_secret_value().strip():
        return None
    return value


CommaList = Annotated[list[str], BeforeValidator(_comma_list)]


def parse_connection_string(text: str) -> dict[str, str]:
    """The ``Name=value;`` parts of a Service Bus connection string, keys as written.

    Raises ValueError naming the missing or malformed part; the message never contains the
    key (or any value but the endpoint's scheme).
    """
    parts: dict[str, str] = {}
    for index, item in enumerate(p for p in text.strip().split(";") if p.strip()):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(
                f"part {index + 1} of the connection string is not Name=value (expected "
                "Endpoint=sb://<namespace>/;SharedAccessKeyName=<policy>;SharedAccessKey=<key>)"
            )
        parts[name.strip()] = value.strip()
    lowered = {name.lower(): name for name in parts}
    if "sharedaccesssignature" in lowered and "endpoint" in lowered:
        return parts
    missing = [name for name in REQUIRED_PARTS if name.lower() not in lowered]
    if missing:
        raise ValueError(
            "the connection string has no "
            + " and no ".join(f"{name}=" for name in missing)
            + " part (expected Endpoint=sb://<namespace>/;SharedAccessKeyName=<policy>;"
            "SharedAccessKey=<key>)"
        )
    endpoint = parts[lowered["endpoint"]]
    if not endpoint.startswith("sb://"):
        scheme = endpoint.split("://", 1)[0] if "://" in endpoint else "(none)"
        raise ValueError(
            f"the connection string's Endpoint must start with sb:// (its scheme is {scheme!r})"
        )
    if not parts[lowered["sharedaccesskey"]]:
        raise ValueError("the connection string's SharedAccessKey= part is empty")
    return parts


class ConnectionSettings(BaseModel):
    """One Service Bus namespace: a connection string, or a namespace and a token credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection_string: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        description="Shared-access connection string "
        "`Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=<policy>;"
        "SharedAccessKey=<key>` (a secret: never logged or shown). An `EntityPath=` part is "
        "ignored: the entity comes from the location.",
    )
    fully_qualified_namespace: str = Field(
        default="",
        description="`<namespace>.servicebus.windows.net`, used with `credential` when no "
        "connection string is set (needs the `identity` extra: "
        "`pip install conductor-events-azure[identity]`).",
    )
    credential: Credential = Field(
        default="default",
        description="Token credential for `fully-qualified-namespace`: `default` "
        "(DefaultAzureCredential), `managed-identity`, `azure-cli`, `environment` or "
        "`workload-identity`.",
    )
    managed_identity_client_id: str = Field(
        default="",
        description="Client id of a user-assigned managed identity (`default` and "
        "`managed-identity` credentials); blank uses the system-assigned one.",
    )

    @field_validator("connection_string")
    @classmethod
    def _check_connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_connection_string(value.get_secret_value())
        return value

    @field_validator("fully_qualified_namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        value = value.strip()
        if "://" in value or "/" in value:
            raise ValueError(
                f"expected a host name such as my-namespace.servicebus.windows.net, got {value!r}"
            )
        return value

    @property
    def configured(self) -> bool:
        return self.connection_string is not None or bool(self.fully_qualified_namespace)


class ReceiveSettings(BaseModel):
    """How subscriptions receive and hold messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefetch_count: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="Messages the SDK's receive link asks the broker for ahead of use. "
        "Prefetched messages are locked from the moment they arrive, so keep it below what "
        "handlers finish within the lock duration; 0 turns prefetch off.",
    )
    max_wait_time: Seconds = Field(
        default=timedelta(seconds=5),
        description="Longest one receive call waits for a first message before it returns "
        "empty (and a consumer checks whether it should stop). Bare numbers are seconds.",
    )
    max_concurrent_messages: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Messages one subscription hands out and holds locked at a time, not yet "
        "completed, abandoned or dead-lettered (lowers the consumer's own limit, never "
        "raises it).",
    )
    max_lock_renewal_duration: Seconds = Field(
        default=timedelta(minutes=5),
        description="How long a handler may hold a message: its lock is renewed in the "
        "background up to this long after it was received; 0 turns automatic renewal off "
        "(`extend` still renews). Bare numbers are seconds.",
    )
    lock_renewal_margin: Seconds = Field(
        default=timedelta(seconds=10),
        description="A held message's lock is renewed once it has less than this (or half "
        "the entity's lock duration) left, so messages settled quickly cost no renewal. Bare "
        "numbers are seconds.",
    )
    max_deliveries: int = Field(
        default=10,
        ge=1,
        le=2000,
        description="Attempt limit: a message nacked on its this-many-th delivery is "
        "dead-lettered (reason `MaxAttemptsExceeded`, the nack's reason as description) "
        "instead of abandoned. Keep it at or below the entity's MaxDeliveryCount (default "
        "10), past which Service Bus dead-letters by itself.",
    )


class RetrySettings(BaseModel):
    """The SDK's retry policy for connection and service errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Retries of a failed operation; opening a link retries neither "
        "authentication failures nor unknown entities.",
    )
    backoff_factor: Seconds = Field(
        default=timedelta(milliseconds=800),
        description="Base delay between retries. Bare numbers are seconds.",
    )
    backoff_max: Seconds = Field(
        default=timedelta(seconds=120),
        description="Longest delay between retries. Bare numbers are seconds.",
    )
    mode: Literal["exponential", "fixed"] = Field(
        default="exponential", description="`exponential` or `fixed` backoff."
    )


class AzureSettings(QueueSettings):
    """Azure Service Bus queues, topics and subscriptions (``azure-servicebus``).

    The default connection is set by ``connection-string`` or ``fully-qualified-namespace``
    directly under the section; more namespaces are named under ``connections.<name>.*`` and
    used as ``azure:<name>:<entity>``.
    """

    section: ClassVar[str] = "conductor.event-queues.azure"

    enabled: bool = Field(default=False, description="Use the `azure` queue type.")
    connection_string: Annotated[SecretStr | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        description="The default connection's shared-access connection string "
        "`Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=<policy>;"
        "SharedAccessKey=<key>` (a secret: never logged or shown).",
    )
    fully_qualified_namespace: str = Field(
        default="",
        description="The default connection's `<namespace>.servicebus.windows.net`, used with "
        "`credential` when no connection string is set (needs the `identity` extra).",
    )
    credential: Credential = Field(
        default="default",
        description="Token credential for `fully-qualified-namespace`: `default` "
        "(DefaultAzureCredential), `managed-identity`, `azure-cli`, `environment` or "
        "`workload-identity`.",
    )
    managed_identity_client_id: str = Field(
        default="",
        description="Client id of a user-assigned managed identity; blank uses the "
        "system-assigned one.",
    )
    connections: dict[str, ConnectionSettings] = Field(
        default_factory=dict,
        description="Named connections, one per namespace: "
        "`connections.<name>.connection-string`, `.fully-qualified-namespace`, `.credential`, "
        "`.managed-identity-client-id`; used as `azure:<name>:<entity>`.",
    )
    session_entities: CommaList = Field(
        default_factory=list,
        description="Comma-separated session-enabled queues and topics: a message key "
        "becomes the session id there (and the partition key everywhere else).",
    )
    receive: ReceiveSettings = Field(default_factory=ReceiveSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @field_validator("connection_string")
    @classmethod
    def _check_connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_connection_string(value.get_secret_value())
        return value

    @field_validator("fully_qualified_namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return ConnectionSettings._check_namespace(value)

    def default_connection(self) -> ConnectionSettings:
        return ConnectionSettings(
            connection_string=self.connection_string,
            fully_qualified_namespace=self.fully_qualified_namespace,
            credential=self.credential,
            managed_identity_client_id=self.managed_identity_client_id,
        )

    def connection(self, name: str | None) -> ConnectionSettings | None:
        """The named connection (``None``: the default one), or ``None`` when not configured."""
        if name is None:
            default = self.default_connection()
            return default if default.configured else None
        lowered = {key.lower(): value for key, value in self.connections.items()}
        return lowered.get(name.lower())

    def requires_session(self, entity: str) -> bool:
        wanted = entity.lower()
        return any(wanted == name.lower() for name in self.session_entities)
