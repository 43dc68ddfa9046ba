"""A scenario: one async check of the backend contract, and the capabilities it needs.

Requirements are functions of the harness that return why the scenario does not apply (the
text pytest shows for the skip) or ``None``. Keeping them next to each scenario, rather than in
the test methods, means the reason a scenario was skipped is written once, where it is decided.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from conductor_events.testing.harness import Harness

ScenarioFunction = Callable[[Harness], Awaitable[None]]
Requirement = Callable[[Harness], str | None]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named scenario and what it needs of the backend."""

    name: str
    function: ScenarioFunction
    requires: Sequence[Requirement] = ()

    def skip_reason(self, harness: Harness) -> str | None:
        """Why the scenario does not apply to this backend, or ``None`` when it runs."""
        for requirement in self.requires:
            reason = requirement(harness)
            if reason is not None:
                return reason
        return None


def scenario(*requires: Requirement) -> Callable[[ScenarioFunction], Scenario]:
    """Declare an async function of the harness a scenario, with its requirements."""

    def wrap(function: ScenarioFunction) -> Scenario:
        return Scenario(function.__name__, function, requires)

    return wrap
