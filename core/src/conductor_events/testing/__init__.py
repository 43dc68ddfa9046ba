"""The conformance kit: one contract test suite that every queue plugin runs on its broker.

A plugin's tests subclass :class:`QueueConformance`, name the plugin, its queue type and its
:class:`Capabilities`, and give a ``queue_properties`` fixture that configures the broker::

    class TestMyQueue(QueueConformance):
        plugin = my_plugin
        queue_type = "mine"
        capabilities = Capabilities(persistent=True)

        @pytest.fixture
        def queue_properties(self) -> dict[str, str]:
            return {"conductor.event-queues.mine.url": "..."}

See docs/conformance.md for every scenario and flag. This package imports pytest: it is for
test suites, and is not imported by the rest of conductor-events.
"""

from conductor_events.testing.capabilities import (
    Capabilities,
    DeadLetterSupport,
    PublishRaw,
    RawPublisher,
    RestartBroker,
)
from conductor_events.testing.harness import Harness
from conductor_events.testing.modes import FULL, SHORT, Counts
from conductor_events.testing.suite import QueueConformance

__all__ = [
    "FULL",
    "SHORT",
    "Capabilities",
    "Counts",
    "DeadLetterSupport",
    "Harness",
    "PublishRaw",
    "QueueConformance",
    "RawPublisher",
    "RestartBroker",
]
