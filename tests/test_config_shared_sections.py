"""Queue types that read one section, as Conductor's ``amqp_queue`` and ``amqp_exchange`` both
read ``conductor.event-queues.amqp``: bound and validated once, switched by one ``enabled``,
listed once, and a section is never split between plugins or models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field, SecretStr

import conductor_events
from conductor_events.backend import QueueClient, QueueType
from conductor_events.config import Configuration, QueueSettings, load_configuration
from conductor_events.config.show import effective_entries
from conductor_events.errors import PluginError, QueueTypeDisabledError
from conductor_events.event_queues import EventQueues
from conductor_events.plugins import FAILED, PluginHost

SECTION = "conductor.event-queues.burrow"


class BurrowSettings(QueueSettings):
    section: ClassVar[str] = SECTION

    hosts: str = Field(default="localhost", min_length=1)
    port: int = Field(default=5672, ge=1, le=65535)
    password: SecretStr = SecretStr("guest")


class OtherSettings(QueueSettings):
    section: ClassVar[str] = SECTION


def _no_client(settings: QueueSettings) -> QueueClient:
    raise AssertionError("never connected in these tests")


class Registers:
    """A plugin registering the given queue types."""

    def __init__(self, *types: QueueType[Any]) -> None:
        self.types = types

    @conductor_events.hookimpl
    def register_queue_types(self, register: Callable[[QueueType[Any]], None]) -> None:
        for queue_type in self.types:
            register(queue_type)


def queue_type(name: str, settings: type[QueueSettings] = BurrowSettings) -> QueueType[Any]:
    return QueueType(name=name, settings=settings, connect=_no_client)


@pytest.fixture
def burrow() -> PluginHost:
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(
        Registers(queue_type("burrow_queue"), queue_type("burrow_exchange")),
        "burrow",
        distribution="burrow-plugin",
        version="1.2.3",
    )
    return host


def load(host: PluginHost, tmp_path: Path, text: str, **environ: str) -> Configuration:
    path = tmp_path / "app.properties"
    path.write_text(text, encoding="utf-8")
    return load_configuration([path], host, environ)


def test_both_types_read_the_section_and_its_enabled_key(
    burrow: PluginHost, tmp_path: Path
) -> None:
    assert not load(burrow, tmp_path, "").enabled("burrow_exchange")
    config = load(burrow, tmp_path, f"{SECTION}.enabled=true\n{SECTION}.hosts=rabbit-1\n")
    assert config.problems == []
    assert config.enabled("burrow_queue")
    assert config.enabled("burrow_exchange")
    first, second = config.settings("burrow_queue"), config.settings("burrow_exchange")
    assert isinstance(first, BurrowSettings)
    assert isinstance(second, BurrowSettings)
    assert first.hosts == second.hosts == "rabbit-1"


def test_the_section_is_validated_once_and_its_errors_name_the_plugin(
    burrow: PluginHost, tmp_path: Path
) -> None:
    config = load(burrow, tmp_path, f"{SECTION}.enabled=true\n{SECTION}.port=0\n")
    assert [str(problem) for problem in config.problems] == [
        f"{tmp_path / 'app.properties'}:2: {SECTION}.port: invalid value '0': Input should be "
        "greater than or equal to 1 (plugin burrow-plugin 1.2.3)"
    ]
    assert config.settings("burrow_queue") is None
    assert config.settings("burrow_exchange") is None


def test_spring_environment_variables_name_the_section(burrow: PluginHost, tmp_path: Path) -> None:
    config = load(
        burrow,
        tmp_path,
        f"{SECTION}.hosts=from-file\n",
        CONDUCTOR_EVENTQUEUES_BURROW_ENABLED="true",
        CONDUCTOR_EVENTQUEUES_BURROW_HOSTS="from-env",
    )
    settings = config.settings("burrow_exchange")
    assert isinstance(settings, BurrowSettings)
    assert settings.enabled
    assert settings.hosts == "from-env"
    assert (
        str(config.entries[f"{SECTION}.hosts"].source) == "env CONDUCTOR_EVENTQUEUES_BURROW_HOSTS"
    )


def test_config_show_lists_the_section_once(burrow: PluginHost, tmp_path: Path) -> None:
    config = load(burrow, tmp_path, f"{SECTION}.password=do-not-show-me\n")
    keys = [entry.key for entry in effective_entries(config, burrow)]
    assert [key for key in keys if "burrow" in key] == [
        f"{SECTION}.enabled",
        f"{SECTION}.hosts",
        f"{SECTION}.password",
        f"{SECTION}.port",
    ]
    shown = {entry.key: entry.display_value for entry in effective_entries(config, burrow)}
    assert shown[f"{SECTION}.password"] == "******"


def test_a_key_under_a_type_name_says_which_section_it_belongs_to(
    burrow: PluginHost, tmp_path: Path
) -> None:
    config = load(burrow, tmp_path, "conductor.event-queues.burrow_queue.port=1\n")
    (problem,) = config.problems
    assert problem.lenient
    assert problem.key == "conductor.event-queues.burrow_queue.port"
    assert problem.message == (
        f"queue type 'burrow_queue' reads its settings from {SECTION}; "
        f"did you mean '{SECTION}.port'?"
    )


def test_a_disabled_sink_names_the_section_to_enable(burrow: PluginHost, tmp_path: Path) -> None:
    queues = EventQueues(load(burrow, tmp_path, ""), burrow)
    with pytest.raises(QueueTypeDisabledError) as error:
        queues.resolve("burrow_exchange:orders")
    assert f"set {SECTION}.enabled=true" in str(error.value)


def test_a_section_bound_by_two_plugins_is_a_start_up_error(burrow: PluginHost) -> None:
    with pytest.raises(PluginError) as error:
        burrow.add_plugin(Registers(queue_type("burrow")), "intruder", distribution="intruder")
    message = str(error.value)
    assert f"section {SECTION} is bound by two plugins: burrow-plugin 1.2.3" in message
    assert "intruder" in message


def test_types_sharing_a_section_must_share_the_model() -> None:
    host = PluginHost(entry_points=[], environ={})
    plugin = Registers(queue_type("burrow_queue"), queue_type("burrow_exchange", OtherSettings))
    with pytest.raises(PluginError) as error:
        host.add_plugin(plugin, "burrow")
    assert "both bind conductor.event-queues.burrow with different settings models" in str(
        error.value
    )
    assert host.queue_types() == {}


class Outside(QueueSettings):
    section: ClassVar[str] = "conductor.server"


class Nested(QueueSettings):
    section: ClassVar[str] = "conductor.event-queues.burrow.queue"


@pytest.mark.parametrize("model", [Outside, Nested])
def test_a_section_outside_event_queues_fails_the_plugin(model: type[QueueSettings]) -> None:
    host = PluginHost(entry_points=[], environ={})
    with pytest.raises(PluginError) as error:
        host.add_plugin(Registers(queue_type("burrow", model)), "burrow")
    assert f"names section {model.section!r}; expected conductor.event-queues.<name>" in str(
        error.value
    )
    (record,) = host.records()
    assert record.status == FAILED
