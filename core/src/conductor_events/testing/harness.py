"""The harness: one queue backend, configured the way an operator would, for one scenario.

It goes through the same path as production code: a :class:`PluginHost` with the plugin added,
a properties file loaded by :func:`load_configuration`, and :class:`EventQueues` resolving
``<type>:<location>`` sinks. So the kit checks the plugin as users will run it (settings model,
``connect``, ``parse_location``), not a client built by hand.

Each scenario runs in its own event loop (``asyncio.run``), under an overall guard timeout, so a
hang fails the test instead of blocking the run, and no pytest-asyncio is needed. Everything a
scenario opens through the harness (queues, subscriptions, locations) is closed or deleted
afterwards, even when the scenario fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import javaproperties
import pytest
import structlog

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.config.loader import load_configuration
from conductor_events.config.model import Configuration
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message, PublishResult
from conductor_events.plugins import PluginHost
from conductor_events.testing.capabilities import Capabilities
from conductor_events.testing.modes import Counts

if TYPE_CHECKING:
    from conductor_events.testing.scenario import Scenario

log = structlog.get_logger(__name__)

PUBLISH_BATCH = 10
"""Messages per publish call when a scenario publishes many: SQS's batch limit, so no plugin
has to split a batch the kit sends (plugins must still accept larger ones)."""

TEARDOWN_TIMEOUT = 30.0
"""Seconds the clean-up after a scenario may take before it is abandoned."""


class SuiteHooks(Protocol):
    """The overridable parts of the test class that the harness calls back into."""

    async def make_location(self, harness: Harness, hint: str) -> str: ...

    async def delete_location(self, harness: Harness, location: str) -> None: ...

    async def make_group(self, harness: Harness, location: str, hint: str) -> str: ...


def configure(
    plugin: object,
    plugin_name: str,
    queue_type: str,
    properties: Mapping[str, str],
    workdir: Path,
) -> tuple[PluginHost, Configuration]:
    """Register the plugin alone and load the author's properties through a real file.

    Any configuration problem fails the test, warnings included: a misspelt key would
    otherwise be ignored and the backend silently run with a default the capabilities do not
    describe. ``enabled=true`` is added when the properties do not say.
    """
    plugins = PluginHost(entry_points=[], strict=True, environ={})
    plugins.add_plugin(plugin, plugin_name)
    registered = plugins.queue_type(queue_type)
    if registered is None:
        names = ", ".join(sorted(plugins.queue_types())) or "none"
        pytest.fail(
            f"plugin {plugin_name!r} does not register queue type {queue_type!r} "
            f"(it registers: {names})",
            pytrace=False,
        )
    values = {str(key): str(value) for key, value in properties.items()}
    enabled = f"{registered.queue_type.section}.enabled"
    values.setdefault(enabled, "true")
    path = workdir / "conformance.properties"
    path.write_text(javaproperties.dumps(values, timestamp=False), encoding="utf-8")
    config = load_configuration([path], plugins, environ={})
    if config.problems:
        problems = "\n".join(str(problem) for problem in config.problems)
        pytest.fail(f"the conformance properties have problems:\n{problems}", pytrace=False)
    if not config.enabled(queue_type):
        pytest.fail(f"{enabled} must not be false in the conformance properties", pytrace=False)
    return plugins, config


class Harness:
    """What a scenario works with: the configured queues, fresh locations, subscriptions.

    Attributes:
        queue_type: the sink prefix under test.
        capabilities: what the backend promises.
        counts: the message counts of the selected mode.
        properties: the author's properties, as given.
        suite: the test-class instance (the author's fixtures ran on it).
        idle_timeout: seconds any expected message may take to arrive, re-armed per delivery.
        scenario_timeout: seconds a whole scenario may take before it counts as a hang.
    """

    def __init__(
        self,
        *,
        suite: SuiteHooks,
        queue_type: str,
        capabilities: Capabilities,
        counts: Counts,
        properties: Mapping[str, str],
        plugins: PluginHost,
        config: Configuration,
        idle_timeout: float,
        scenario_timeout: float,
    ) -> None:
        self.suite = suite
        self.queue_type = queue_type
        self.capabilities = capabilities
        self.counts = counts
        self.properties = dict(properties)
        self.plugins = plugins
        self.config = config
        self.idle_timeout = idle_timeout
        self.scenario_timeout = scenario_timeout
        self._queues: EventQueues | None = None
        self._opened: list[EventQueues] = []
        self._subscriptions: list[Subscription] = []
        self._locations: list[str] = []

    # -- running ---------------------------------------------------------------------------

    def run(self, scenario: Scenario) -> None:
        """Run one scenario in a fresh event loop; skip it, with the reason, when it does not
        apply to this backend."""
        asyncio.run(self._run(scenario))

    async def _run(self, scenario: Scenario) -> None:
        self._queues = EventQueues(self.config, self.plugins)
        failed = True
        try:
            reason = scenario.skip_reason(self)
            if reason is not None:
                failed = False
                pytest.skip(f"{type(self.suite).__name__}::{scenario.name}: {reason}")
            guard = asyncio.timeout(self.scenario_timeout)
            try:
                async with guard:
                    await scenario.function(self)
            except TimeoutError:
                if not guard.expired():
                    raise
                pytest.fail(
                    f"{scenario.name} did not finish within {self.scenario_timeout:g}s: "
                    "something hangs (a publish, receive, settlement or close that never "
                    "returns); raise scenario_timeout if the broker is merely slow",
                    pytrace=False,
                )
            failed = False
        finally:
            await self._teardown(failed)

    async def _teardown(self, failed: bool) -> None:
        """Close what the scenario opened; clean-up errors fail only an otherwise passing run."""
        errors: list[str] = []
        try:
            async with asyncio.timeout(TEARDOWN_TIMEOUT):
                for subscription in self._subscriptions:
                    try:
                        await subscription.close()
                    except Exception as exc:
                        errors.append(f"closing a subscription: {type(exc).__name__}: {exc}")
                for location in self._locations:
                    try:
                        await self.suite.delete_location(self, location)
                    except Exception as exc:
                        errors.append(f"deleting {location!r}: {type(exc).__name__}: {exc}")
                for queues in [*self._opened, self.queues]:
                    try:
                        await queues.aclose()
                    except Exception as exc:
                        errors.append(f"closing the queues: {type(exc).__name__}: {exc}")
        except TimeoutError:
            errors.append(f"clean-up did not finish within {TEARDOWN_TIMEOUT:g}s")
        finally:
            self._subscriptions.clear()
            self._locations.clear()
            self._opened.clear()
            self._queues = None
        if errors and not failed:
            pytest.fail("clean-up after the scenario failed: " + "; ".join(errors), pytrace=False)
        for error in errors:
            log.warning("conformance.teardown.failed", error=error)

    # -- the backend -----------------------------------------------------------------------

    @property
    def queues(self) -> EventQueues:
        """The scenario's queues (one client of the type under test)."""
        if self._queues is None:
            raise RuntimeError("the harness's queues exist only while a scenario runs")
        return self._queues

    @property
    def client(self) -> QueueClient:
        return self.queues.client(self.queue_type)

    def new_queues(self) -> EventQueues:
        """Another, independent set of queues: a second client, as another process would have."""
        queues = EventQueues(self.config, self.plugins)
        self._opened.append(queues)
        return queues

    @property
    def max_payload_size(self) -> int | None:
        """The declared payload limit, else the client's own."""
        declared = self.capabilities.max_payload_size
        return declared if declared is not None else self.client.max_message_size

    def sink(self, location: str) -> str:
        """The sink (event) string of a location: ``<type>:<location>``."""
        return f"{self.queue_type}:{location}"

    async def location(self, hint: str) -> str:
        """A fresh, empty location for this scenario (``make_location``), deleted afterwards."""
        location = await self.suite.make_location(self, hint)
        self._locations.append(location)
        return location

    # -- publishing ------------------------------------------------------------------------

    async def publish(
        self, location: str, messages: Sequence[Message], *, queues: EventQueues | None = None
    ) -> PublishResult:
        """One publish call, its result unchecked."""
        return await (queues or self.queues).publish(self.sink(location), messages)

    async def publish_all(
        self,
        location: str,
        messages: Sequence[Message],
        *,
        queues: EventQueues | None = None,
        batch: int = PUBLISH_BATCH,
    ) -> None:
        """Publish in batches and require the broker to confirm every message."""
        for start in range(0, len(messages), batch):
            chunk = messages[start : start + batch]
            result = await self.publish(location, chunk, queues=queues)
            check_confirmed(result, chunk, f"publish to {self.sink(location)}")

    # -- subscribing -----------------------------------------------------------------------

    async def subscribe(
        self,
        location: str,
        *,
        queues: EventQueues | None = None,
        **options: Any,
    ) -> Subscription:
        """Open a subscription, closed after the scenario if the scenario does not close it.

        ``options`` are :class:`SubscribeOptions` fields; ``drain_timeout`` defaults to 1 s so
        a failing scenario's clean-up does not wait 30 s for deliveries nobody will settle.
        """
        options.setdefault("drain_timeout", 1.0)
        subscription = await (queues or self.queues).subscribe(
            self.sink(location), SubscribeOptions(**options)
        )
        self._subscriptions.append(subscription)
        return subscription

    async def subscribe_many(self, location: str, count: int, **options: Any) -> list[Subscription]:
        """Open ``count`` competing subscriptions concurrently."""
        return list(
            await asyncio.gather(*(self.subscribe(location, **options) for _ in range(count)))
        )


def check_confirmed(result: PublishResult, messages: Sequence[Message], what: str) -> None:
    """Fail unless the result confirms exactly these messages."""
    if not result.ok:
        raise AssertionError(f"{what}: the broker refused messages: {result.failure_summary()}")
    missing = {m.id for m in messages} - set(result.published)
    if missing:
        raise AssertionError(
            f"{what}: PublishResult.published lacks {len(missing)} of {len(messages)} "
            f"messages, with no failure reported (e.g. {sorted(missing)[:3]})"
        )
