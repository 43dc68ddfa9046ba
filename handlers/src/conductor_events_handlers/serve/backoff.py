"""Capped exponential backoff with full jitter, for reconnecting and restarting listeners."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each drawn at random between
    half of it and all of it (so listeners that failed together do not retry together).

    Call :meth:`next_delay` after each failure and :meth:`reset` after a success.
    """

    initial: float = 1.0
    maximum: float = 60.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def ceiling(self) -> float:
        """The delay before jitter for the current number of failures."""
        return float(min(self.maximum, self.initial * 2 ** max(self.failures - 1, 0)))

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        self.failures += 1
        ceiling = self.ceiling()
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def reset(self) -> None:
        self.failures = 0
