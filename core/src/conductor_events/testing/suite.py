"""The base test class a queue plugin subclasses to run the conformance kit on its broker.

Shaped like fsspec's abstract test classes: the scenarios are test methods here, and the
subclass only says what to test (plugin, queue type, capabilities) and how to reach the broker
(a ``queue_properties`` fixture). Its name does not start with ``Test``, so pytest collects
only the subclasses.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from conductor_events.plugins import ENTRY_POINT_GROUP
from conductor_events.testing.capabilities import Capabilities
from conductor_events.testing.entry_point import check_entry_point, distribution_of
from conductor_events.testing.harness import Harness, configure
from conductor_events.testing.modes import FULL, SHORT
from conductor_events.testing.scenario import Scenario
from conductor_events.testing.scenarios import (
    batches,
    foreign,
    lifecycle,
    ordering,
    payloads,
    pubsub,
    settlement,
)

FULL_OPTION = "--conformance-full"
FULL_DEST = "conformance_full"


class QueueConformance:
    """The contract suite of a queue plugin. Subclass it as ``Test...`` and set:

    Attributes:
        plugin: the plugin to register: the module (or object) holding its hook
            implementations, i.e. what its ``conductor_events`` entry point names.
        queue_type: the queue type under test, as the plugin registers it.
        capabilities: what the backend promises; decides which scenarios run.
        plugin_name: the name to register the plugin under (default: ``queue_type``).
        short: use the short mode's smaller counts (``--conformance-full`` overrides it).
        idle_timeout: seconds an expected message may take to arrive, re-armed per delivery.
        scenario_timeout: seconds one scenario may take before it fails as a hang; default
            120 in short mode and 600 in full mode.
        skip_scenarios: scenario name (the test name without ``test_``) to the reason the
            backend cannot pass it, for known limitations; the reason shows in the report.
        distribution: the installed distribution whose ``conductor_events`` entry point
            ``test_entry_point`` loads; ``None`` finds it from ``plugin`` (the distribution
            shipping its package) or from an entry point named ``plugin_name`` or
            ``queue_type``.

    and define a ``queue_properties`` fixture returning the ``conductor.event-queues.<type>.*``
    properties (key to string value) that configure the broker. Override the async hooks
    ``make_location``, ``delete_location`` and ``make_group`` when the broker needs entities
    created or removed.
    """

    plugin: object
    queue_type: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    plugin_name: ClassVar[str | None] = None
    short: ClassVar[bool] = False
    idle_timeout: ClassVar[float] = 10.0
    scenario_timeout: ClassVar[float | None] = None
    skip_scenarios: ClassVar[Mapping[str, str]] = {}
    distribution: ClassVar[str | None] = None

    # -- what the subclass provides --------------------------------------------------------

    @pytest.fixture
    def queue_properties(self) -> Mapping[str, str]:
        """The properties that configure the broker under test; subclasses override this."""
        pytest.fail(
            f"{type(self).__name__} must define a queue_properties fixture returning the "
            f"conductor.event-queues.{self.queue_type}.* properties of the broker under test",
            pytrace=False,
        )

    async def make_location(self, harness: Harness, hint: str) -> str:
        """A fresh, empty location for one scenario; ``hint`` says which (letters, digits, -).

        The default is a unique name of lower-case letters, digits and ``-``. Override to
        create the entity first (a Kafka topic, a Service Bus queue or topic with its
        subscriptions) or to fit the backend's grammar (an SQS FIFO queue ends in ``.fifo``).
        """
        return f"ce-{hint}-{uuid.uuid4().hex[:10]}"

    async def delete_location(self, harness: Harness, location: str) -> None:
        """Remove a location ``make_location`` made, after its scenario; the default keeps it."""

    async def make_group(self, harness: Harness, location: str, hint: str) -> str:
        """A consumer group (or subscription) name on ``location``; create it here if the
        broker needs that before a publish reaches it."""
        return hint

    # -- the harness -----------------------------------------------------------------------

    @pytest.fixture
    def conformance_harness(
        self,
        request: pytest.FixtureRequest,
        queue_properties: Mapping[str, str],
        tmp_path: Path,
    ) -> Harness:
        """Registers the plugin, loads the properties, and picks the mode."""
        full = bool(request.config.getoption(FULL_DEST, default=False)) or not self.short
        plugins, config = configure(
            self.plugin,
            self.plugin_name or self.queue_type,
            self.queue_type,
            queue_properties,
            tmp_path,
        )
        timeout = self.scenario_timeout or (600.0 if full else 120.0)
        return Harness(
            suite=self,
            queue_type=self.queue_type,
            capabilities=self.capabilities,
            counts=FULL if full else SHORT,
            properties=queue_properties,
            plugins=plugins,
            config=config,
            idle_timeout=self.idle_timeout,
            scenario_timeout=timeout,
        )

    def run_scenario(self, harness: Harness, scenario: Scenario) -> None:
        """Run one scenario unless the subclass lists it in ``skip_scenarios``."""
        reason = self.skip_scenarios.get(scenario.name)
        if reason is not None:
            pytest.skip(f"{type(self).__name__}::{scenario.name}: {reason}")
        harness.run(scenario)

    # -- packaging -------------------------------------------------------------------------

    def test_entry_point(self) -> None:
        """The plugin loads through its installed entry point and provides the queue type (the
        scenarios register ``plugin`` directly, so a misspelt entry point would pass them)."""
        names = [self.queue_type, *([self.plugin_name] if self.plugin_name else [])]
        distribution = self.distribution or distribution_of(self.plugin, names)
        if distribution is None:
            pytest.fail(
                f"{type(self).__name__}: no installed distribution ships {self.plugin!r} or "
                f"declares a {ENTRY_POINT_GROUP!r} entry point named {' or '.join(names)}; "
                "install the plugin package, or set distribution on the test class",
                pytrace=False,
            )
        try:
            check_entry_point(distribution, self.queue_type)
        except AssertionError as exc:
            pytest.fail(str(exc), pytrace=False)

    # -- delivery (Watermill) --------------------------------------------------------------

    def test_registration(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.registration)

    def test_publish_subscribe(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.publish_subscribe)

    def test_concurrent_subscribe(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.concurrent_subscribe)

    def test_multiple_topics(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.multiple_topics)

    def test_topic_isolation(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.topic_isolation)

    def test_resend_on_error(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.resend_on_error)

    def test_continue_after_errors(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.continue_after_errors)

    def test_publisher_close(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.publisher_close)

    def test_consumer_groups(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.consumer_groups)

    def test_new_subscriber_receives_old_messages(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, pubsub.new_subscriber_receives_old_messages)

    # -- ordering --------------------------------------------------------------------------

    def test_no_ack(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, ordering.no_ack)

    def test_in_order(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, ordering.in_order)

    # -- lifecycle -------------------------------------------------------------------------

    def test_continue_after_subscribe_close(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, lifecycle.continue_after_subscribe_close)

    def test_concurrent_close(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, lifecycle.concurrent_close)

    def test_message_ctx(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, lifecycle.message_ctx)

    def test_subscribe_ctx(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, lifecycle.subscribe_ctx)

    def test_graceful_drain(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, lifecycle.graceful_drain)

    def test_consumer_closed_mid_delivery(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, lifecycle.consumer_closed_mid_delivery)

    def test_reconnect(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, lifecycle.reconnect)

    # -- settlement ------------------------------------------------------------------------

    def test_dead_letter_after_attempt_limit(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, settlement.dead_letter_after_attempt_limit)

    def test_dead_letter_explicit(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, settlement.dead_letter_explicit)

    def test_lease_expiry(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, settlement.lease_expiry)

    def test_visibility_extension(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, settlement.visibility_extension)

    # -- payloads --------------------------------------------------------------------------

    def test_header_round_trip(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, payloads.header_round_trip)

    def test_large_payload(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, payloads.large_payload)

    def test_batch_partial_failure(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, payloads.batch_partial_failure)

    def test_event_round_trip(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, payloads.event_round_trip)

    # -- batches ---------------------------------------------------------------------------

    def test_batch_receive_ack(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, batches.batch_receive_ack)

    # -- foreign bodies --------------------------------------------------------------------

    def test_foreign_malformed_body(self, conformance_harness: Harness) -> None:
        self.run_scenario(conformance_harness, foreign.foreign_malformed_body)
