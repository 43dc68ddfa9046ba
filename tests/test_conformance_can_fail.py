"""The kit's newer checks fail a backend that breaks their promise, and pass it otherwise.

Each scenario runs against the ``lease`` test backend (tests/support/lease_queue.py), once
sound and once with one fault switched on; the entry-point check runs against fake installed
distributions whose entry points are misspelt or provide another queue type.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conductor_events.testing import Capabilities, DeadLetterSupport, Harness, QueueConformance
from conductor_events.testing.entry_point import check_entry_point, distribution_of
from conductor_events.testing.harness import configure
from conductor_events.testing.modes import SHORT
from conductor_events.testing.scenario import Scenario
from conductor_events.testing.scenarios import lifecycle, settlement
from tests.support import lease_queue
from tests.support.distributions import make_distribution

VISIBILITY = 0.3
MAX_DELIVERIES = 3
FAILED = (AssertionError, pytest.fail.Exception)


class LeaseSuite(QueueConformance):
    """The suite's hooks (locations, groups) for a harness built by hand; not collected."""

    plugin = lease_queue
    queue_type = "lease"


def lease_harness(tmp_path: Path, broken: str = "") -> Harness:
    """A harness on a fresh ``lease`` store, with ``broken`` faults switched on."""
    prefix = "conductor.event-queues.lease"
    properties = {
        f"{prefix}.store": uuid.uuid4().hex,
        f"{prefix}.visibility-timeout": str(VISIBILITY),
        f"{prefix}.max-deliveries": str(MAX_DELIVERIES),
        f"{prefix}.broken": broken,
    }
    capabilities = Capabilities(
        persistent=True,
        dead_letter=DeadLetterSupport(
            location=lambda name: f"{name}.dlq", max_deliveries=MAX_DELIVERIES
        ),
        visibility_timeout=VISIBILITY,
    )
    plugins, config = configure(lease_queue, "lease", "lease", properties, tmp_path)
    return Harness(
        suite=LeaseSuite(),
        queue_type="lease",
        capabilities=capabilities,
        counts=SHORT,
        properties=properties,
        plugins=plugins,
        config=config,
        idle_timeout=2.0,
        scenario_timeout=30.0,
    )


def fails(harness: Harness, scenario: Scenario) -> str:
    """Run the scenario, require it to fail, and return its message."""
    with pytest.raises(FAILED) as failure:
        harness.run(scenario)
    return str(failure.value)


# -- lease expiry ---------------------------------------------------------------------------


def test_lease_expiry_passes_a_backend_that_keeps_its_promise(tmp_path: Path) -> None:
    lease_harness(tmp_path).run(settlement.lease_expiry)


def test_lease_expiry_fails_when_attempt_does_not_go_up(tmp_path: Path) -> None:
    message = fails(lease_harness(tmp_path, "no-attempts"), settlement.lease_expiry)
    assert "delivery 2 has attempt 1, expected 2" in message


def test_lease_expiry_fails_when_the_message_is_never_dead_lettered(tmp_path: Path) -> None:
    message = fails(lease_harness(tmp_path, "keep-expired"), settlement.lease_expiry)
    assert "delivered again on its location" in message


def test_lease_expiry_fails_when_the_message_is_lost(tmp_path: Path) -> None:
    message = fails(lease_harness(tmp_path, "drop-expired"), settlement.lease_expiry)
    assert "it was lost" in message


def test_lease_expiry_is_skipped_when_it_would_take_too_long(tmp_path: Path) -> None:
    harness = lease_harness(tmp_path)
    harness.capabilities = Capabilities(
        persistent=True,
        dead_letter=DeadLetterSupport(location=lambda name: name, max_deliveries=20),
        visibility_timeout=2.0,
    )
    reason = settlement.lease_expiry.skip_reason(harness)
    assert reason is not None
    assert "21 visibility timeouts of 2s (42s)" in reason


# -- consumer closed mid-delivery -----------------------------------------------------------


def test_close_mid_delivery_passes_a_backend_that_returns_what_it_held(tmp_path: Path) -> None:
    lease_harness(tmp_path).run(lifecycle.consumer_closed_mid_delivery)


def test_close_mid_delivery_fails_a_backend_that_drops_what_it_held(tmp_path: Path) -> None:
    message = fails(
        lease_harness(tmp_path, "release-drops"), lifecycle.consumer_closed_mid_delivery
    )
    assert "consumer closed mid-delivery" in message
    assert "did not arrive" in message


# -- the entry point ------------------------------------------------------------------------


def test_entry_point_check_loads_the_installed_plugin() -> None:
    import conductor_events_memory

    distribution = distribution_of(conductor_events_memory)
    assert distribution == "conductor-events-memory"
    found = check_entry_point(distribution, "memory")
    assert found.entry_point == "memory = 'conductor_events_memory'"


def test_entry_point_check_fails_on_a_misspelt_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(
        tmp_path, "conductor-events-typo", "1.0", {"typo": "conductor_events_memroy"}, {}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AssertionError) as failure:
        check_entry_point("conductor-events-typo", "memory")
    message = str(failure.value)
    assert "entry point typo = 'conductor_events_memroy'" in message
    assert "conductor-events-typo" in message
    assert "ModuleNotFoundError" in message


def test_entry_point_check_fails_when_no_entry_point_provides_the_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(
        tmp_path, "conductor-events-other", "1.0", {"other": "conductor_events_memory"}, {}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AssertionError, match="registers queue type 'lease'"):
        check_entry_point("conductor-events-other", "lease")


def test_entry_point_test_fails_the_suite_with_the_entry_point_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(tmp_path, "conductor-events-lease", "1.0", {"lease": "lease_queu"}, {})
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = LeaseSuite()
    with pytest.raises(pytest.fail.Exception, match=r"entry point lease = 'lease_queu'"):
        suite.test_entry_point()
