"""The plugin as the core finds it: entry point, registration, and no boto3 until first use."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap

from conductor_events.plugins import PluginHost

CHECK_LAZY_IMPORT = textwrap.dedent(
    """
    import json, sys
    from conductor_events.config import load_configuration
    from conductor_events.plugins import PluginHost
    from conductor_events.runtime import EventQueues

    host = PluginHost(environ={"CONDUCTOR_EVENTS_PLUGINS": "sqs"})  # real entry points
    types = sorted(host.queue_types())
    config = load_configuration([], host, {"CONDUCTOR_EVENTQUEUES_SQS_ENABLED": "true"})
    config.raise_for_errors()
    queues = EventQueues(config, host)
    loaded = [m for m in ("boto3", "botocore") if m in sys.modules]
    queues.resolve("sqs:orders")  # first use of an sqs queue: connect
    print(json.dumps({"types": types, "before": loaded, "after": "boto3" in sys.modules}))
    """
)


def test_loading_the_plugin_does_not_import_boto3() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK_LAZY_IMPORT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["types"] == ["sqs"]
    assert report["before"] == []
    assert report["after"] is True


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
