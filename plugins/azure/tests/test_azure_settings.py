"""Settings, locations, loading without the SDK, named connections, and the docs' key table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conductor_events_azure.locations import Location, parse_location
from conductor_events_azure.settings import (
    AzureSettings,
    ConnectionSettings,
    ReceiveSettings,
    RetrySettings,
    parse_connection_string,
)
from pydantic import BaseModel, SecretStr
from servicebus_broker import ServiceBusBroker

from conductor_events.backend import SubscribeOptions
from conductor_events.config.binding import kebab
from conductor_events.config.loader import load_configuration
from conductor_events.errors import ConfigError, MalformedSinkError
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost
from conductor_events.testing.plugin_checks import sdk_import_report

DOCS = Path(__file__).resolve().parents[3] / "docs" / "azure.md"
SECRET = "c2VjcmV0LWtleS1uZXZlci1zaG93bg=="


def test_loading_the_plugin_imports_no_azure_module() -> None:
    report = sdk_import_report("conductor_events_azure.plugin", ["azure"])
    assert report.queue_types == ["azure"]
    assert report.at_load == []


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("orders", Location(None, "orders")),
        ("prod:orders", Location("prod", "orders")),
        ("events/subscriptions/billing", Location(None, "events", "billing")),
        ("prod:events/Subscriptions/billing", Location("prod", "events", "billing")),
        ("orders/$deadletterqueue", Location(None, "orders", None, True)),
        ("events/subscriptions/b/$DeadLetterQueue", Location(None, "events", "b", True)),
        ("a/b.c-d_e", Location(None, "a/b.c-d_e")),
    ],
)
def test_locations(location: str, expected: Location) -> None:
    assert parse_location(location) == expected


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "empty"),
        ("bad name:orders", "invalid connection name"),
        ("orders?x", "invalid Service Bus entity"),
        ("t/subscriptions/a/b", "invalid subscription location"),
        ("$orders", "invalid Service Bus entity"),
    ],
)
def test_bad_locations(location: str, message: str) -> None:
    with pytest.raises(MalformedSinkError, match=message):
        parse_location(location)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        (f"SharedAccessKeyName=p;SharedAccessKey={SECRET}", "no Endpoint="),
        (f"Endpoint=sb://ns/;SharedAccessKey={SECRET}", "no SharedAccessKeyName="),
        ("Endpoint=sb://ns/;SharedAccessKeyName=p", "no SharedAccessKey="),
        (f"Endpoint=https://ns/;SharedAccessKeyName=p;SharedAccessKey={SECRET}", "sb://"),
        (f"Endpoint=sb://ns/;SharedAccessKeyName=p;{SECRET.rstrip('=')}", "not Name=value"),
    ],
)
def test_malformed_connection_string_names_the_part_and_never_the_key(
    text: str, missing: str
) -> None:
    with pytest.raises(ValueError, match=missing) as raised:
        parse_connection_string(text)
    assert SECRET.rstrip("=") not in str(raised.value)


def test_malformed_connection_string_in_a_properties_file(
    plugins: PluginHost, tmp_path: Path
) -> None:
    path = tmp_path / "app.properties"
    path.write_text(
        "conductor.event-queues.azure.enabled=true\n"
        "conductor.event-queues.azure.connection-string="
        f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey={SECRET}\n",
        encoding="utf-8",
    )
    config = load_configuration([path], plugins, environ={})
    with pytest.raises(ConfigError) as raised:
        config.raise_for_errors()
    text = str(raised.value)
    assert "conductor.event-queues.azure.connection-string" in text
    assert "SharedAccessKeyName" in text
    assert "app.properties:2" in text
    assert SECRET not in text


def test_connection_string_is_a_secret(broker: ServiceBusBroker) -> None:
    settings = AzureSettings(enabled=True, connection_string=SecretStr(broker.connection_string()))
    assert broker.key not in repr(settings)
    assert broker.key not in str(settings.summary())


def test_both_connection_forms_is_a_problem(plugins: PluginHost, tmp_path: Path) -> None:
    path = tmp_path / "app.properties"
    path.write_text(
        "conductor.event-queues.azure.enabled=true\n"
        "conductor.event-queues.azure.connections.b.fully-qualified-namespace=b.example\n"
        "conductor.event-queues.azure.connections.b.connection-string="
        f"Endpoint=sb://b/;SharedAccessKeyName=p;SharedAccessKey={SECRET}\n",
        encoding="utf-8",
    )
    config = load_configuration([path], plugins, environ={})
    problems = [str(problem) for problem in config.problems]
    assert any(
        "connections.b.fully-qualified-namespace" in p and "set one of them" in p for p in problems
    ), problems


def test_a_missing_connection_is_located_at_the_section_key_that_is_set(
    plugins: PluginHost, tmp_path: Path
) -> None:
    path = tmp_path / "app.properties"
    path.write_text(
        "# Service Bus\nconductor.event-queues.azure.enabled=true\n"
        "conductor.event-queues.azure.connections.b.credential=azure-cli\n",
        encoding="utf-8",
    )
    problems = [str(problem) for problem in load_configuration([path], plugins, {}).problems]
    assert problems == [
        f"{path}:3: conductor.event-queues.azure.connections.b.connection-string: is missing: "
        "set it or conductor.event-queues.azure.connections.b.fully-qualified-namespace "
        "(plugin conductor-events-azure 0.1.0)"
    ]
    path.write_text("\nconductor.event-queues.azure.enabled=true\n", encoding="utf-8")
    (problem,) = load_configuration([path], plugins, {}).problems
    assert str(problem).startswith(f"{path}:2: conductor.event-queues.azure.connection-string: ")


async def test_named_connection_location(
    plugins: PluginHost,
    properties: Callable[..., Path],
    broker: ServiceBusBroker,
    queue_name: str,
) -> None:
    key = "conductor.event-queues.azure.connections.Billing.connection-string"
    extra = f"{key}={broker.connection_string()}"
    files = [properties(extra, connection=False)]
    async with EventQueues.from_files(files, plugins=plugins, environ={}) as queues:
        message = Message({"named": True})
        result = await queues.publish(f"azure:billing:{queue_name}", [message])
        assert result.ok
        with pytest.raises(MalformedSinkError, match="default connection"):
            queues.resolve(f"azure:{queue_name}")
        with pytest.raises(MalformedSinkError, match="'other'"):
            queues.resolve(f"azure:other:{queue_name}")
        subscription = await queues.subscribe(f"azure:Billing:{queue_name}", SubscribeOptions())
        async with subscription:
            delivery = await subscription.receive(timeout=10)
            assert delivery is not None
            assert delivery.message.id == message.id
            await delivery.ack()


def _documented_keys() -> list[str]:
    keys = [f"conductor.event-queues.azure.{kebab(name)}" for name in AzureSettings.model_fields]
    nested: list[tuple[str, type[BaseModel]]] = [
        ("receive", ReceiveSettings),
        ("retry", RetrySettings),
        ("connections.<name>", ConnectionSettings),
    ]
    for prefix, model in nested:
        keys += [
            f"conductor.event-queues.azure.{prefix}.{kebab(name)}" for name in model.model_fields
        ]
    return [key for key in keys if not key.endswith((".receive", ".retry"))]


def test_every_key_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [key for key in _documented_keys() if f"`{key}" not in text]
    assert not missing, f"docs/azure.md does not document: {missing}"
