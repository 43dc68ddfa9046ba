"""Loading the plugin registers both types and imports no nats-py; first use of a type does."""

from __future__ import annotations

from pathlib import Path

import pytest
from conductor_events_nats.settings import JetStreamSettings, NatsSettings

from conductor_events.plugins import PluginHost
from conductor_events.testing.contract_check import core_internals_used
from conductor_events.testing.plugin_checks import sdk_import_report


def test_loading_the_plugin_does_not_import_nats_py() -> None:
    for queue_type in ("nats", "jsm"):
        report = sdk_import_report(
            "conductor_events_nats.plugin",
            ["nats"],
            sink=f"{queue_type}:orders",
            properties={f"conductor.event-queues.{queue_type}.enabled": "true"},
        )
        assert {"jsm", "nats"} <= set(report.queue_types)
        assert report.at_load == []
        assert "nats" in report.after_use


def test_both_types_are_registered_with_their_settings(plugins: PluginHost) -> None:
    nats = plugins.queue_type("nats")
    jsm = plugins.queue_type("jsm")
    assert nats is not None
    assert jsm is not None
    assert nats.queue_type.settings is NatsSettings
    assert jsm.queue_type.settings is JetStreamSettings


def test_the_core_type_says_it_is_at_most_once(plugins: PluginHost) -> None:
    registered = plugins.queue_type("nats")
    assert registered is not None
    assert "at most once" in registered.queue_type.description


async def test_a_missing_plugin_names_the_package_and_extra_to_install(tmp_path: Path) -> None:
    from conductor_events.errors import UnknownQueueTypeError
    from conductor_events.event_queues import EventQueues

    empty = PluginHost(entry_points=[], environ={})
    async with EventQueues.from_files([], plugins=empty, environ={}) as queues:
        for sink in ("jsm:orders", "nats:orders"):
            with pytest.raises(UnknownQueueTypeError) as caught:
                queues.resolve(sink)
            assert "install conductor-events-nats (pip install 'conductor-events[nats]')" in str(
                caught.value
            )


def test_the_plugin_touches_no_internals_of_core_classes() -> None:
    """Deliveries are the core's ``Delivery(message, attempt, handle)`` with this plugin's
    handles; only the queue contract's public names and documented extension hooks are used
    (what a third party's plugin could use)."""
    source = Path(__file__).resolve().parents[1] / "src"
    assert core_internals_used([source]) == []
