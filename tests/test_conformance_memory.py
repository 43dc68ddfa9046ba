"""The example ``memory`` plugin against the conformance kit.

Its messages live in one client, so it is not persistent: the kit subscribes before
publishing, and the scenarios about persistence, dead-lettering, visibility timeouts and broker
restarts are skipped, each with the reason in the test report. So is the foreign-body one: the
plugin keeps messages as objects, never as bytes, so no other producer can write to it. Its
size limit comes from the client's ``max_message_size``.
"""

from __future__ import annotations

import conductor_events_memory
import pytest

from conductor_events.testing import Capabilities, QueueConformance


class TestMemoryQueueConformance(QueueConformance):
    plugin = conductor_events_memory
    queue_type = "memory"
    short = True
    capabilities = Capabilities(ordered=True)

    @pytest.fixture
    def queue_properties(self) -> dict[str, str]:
        return {"conductor.event-queues.memory.max-message-size": "65536"}
