"""The plugin as the core finds it: entry point, registration, and no boto3 until first use."""

from __future__ import annotations

import importlib.metadata

from conductor_events.plugins import PluginHost
from conductor_events.testing.plugin_checks import sdk_import_report


def test_loading_the_plugin_does_not_import_boto3() -> None:
    report = sdk_import_report(
        "conductor_events_sqs.plugin",
        ["boto3", "botocore"],
        sink="sqs:orders",  # first use of an sqs queue: connect
        properties={"conductor.event-queues.sqs.enabled": "true"},
    )
    assert report.queue_types == ["sqs"]
    assert report.at_load == []
    assert "boto3" in report.after_use


def test_entry_point_is_declared() -> None:
    points = importlib.metadata.entry_points(group="conductor_events", name="sqs")
    (point,) = points
    assert point.value == "conductor_events_sqs.plugin"
    assert point.dist is not None
    assert point.dist.metadata["Name"] == "conductor-events-sqs"


def test_registers_the_sqs_type(plugins: PluginHost) -> None:
    registered = plugins.queue_type("sqs")
    assert registered is not None
    assert registered.plugin.distribution == "conductor-events-sqs"
    assert registered.queue_type.settings.section == "conductor.event-queues.sqs"
    assert "validate_config" in registered.plugin.hooks
