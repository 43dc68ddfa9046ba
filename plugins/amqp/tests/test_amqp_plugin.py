"""The plugin as the core finds it: entry point, both queue types, no aio-pika until first use."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from conductor_events.config import load_configuration
from conductor_events.errors import UnknownQueueTypeError
from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost
from conductor_events.testing.contract_check import core_internals_used
from conductor_events.testing.plugin_checks import sdk_import_report


def test_loading_the_plugin_does_not_import_aio_pika() -> None:
    report = sdk_import_report(
        "conductor_events_amqp.plugin",
        ["aio_pika", "aiormq", "pamqp"],
        sink="amqp_queue:orders",  # first use of the type: connect (no I/O)
        properties={"conductor.event-queues.amqp.enabled": "true"},
    )
    assert report.queue_types == ["amqp_exchange", "amqp_queue"]
    assert report.at_load == []
    assert "aio_pika" in report.after_use


def test_entry_point_is_declared() -> None:
    points = importlib.metadata.entry_points(group="conductor_events", name="amqp")
    (point,) = points
    assert point.value == "conductor_events_amqp.plugin"
    assert point.dist is not None
    assert point.dist.metadata["Name"] == "conductor-events-amqp"


def test_registers_both_types_on_conductors_one_section(plugins: PluginHost) -> None:
    for name in ("amqp_queue", "amqp_exchange"):
        registered = plugins.queue_type(name)
        assert registered is not None
        assert registered.plugin.distribution == "conductor-events-amqp"
        assert registered.queue_type.section == "conductor.event-queues.amqp"


def test_without_the_plugin_the_amqp_section_names_the_package_to_install(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.properties"
    path.write_text("conductor.event-queues.amqp.enabled=true\n", encoding="utf-8")
    config = load_configuration([path], PluginHost(entry_points=[], environ={}), {})
    (problem,) = config.warnings
    assert problem.key == "conductor.event-queues.amqp.enabled"
    assert "install conductor-events-amqp (pip install 'conductor-events[amqp]')" in str(problem)


def test_without_the_plugin_a_sink_names_the_package_and_extra_to_install() -> None:
    bare = PluginHost(entry_points=[], environ={})
    queues = EventQueues(load_configuration([], bare, {}), bare)
    for sink in ("amqp_queue:orders", "amqp_exchange:events?routingKey=rk"):
        with pytest.raises(UnknownQueueTypeError) as error:
            queues.resolve(sink)
        assert "install conductor-events-amqp (pip install 'conductor-events[amqp]')" in str(
            error.value
        )


def test_the_plugin_touches_no_internals_of_core_classes() -> None:
    """Only the queue contract's public names and documented extension hooks (what a third
    party's plugin could use)."""
    source = Path(__file__).resolve().parents[1] / "src"
    assert core_internals_used([source]) == []
