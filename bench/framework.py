"""What a benchmark case is: a measurement, an optional raw baseline, and an optional target.

A case module (see :mod:`bench.cases`) lists :class:`Case` objects in ``CASES``. A case names
its backend and operation, says what it measures (:class:`Metric`), and gives a ``measure``
function that does the work once and returns a :class:`Sample`. When the case has a raw
baseline (the same work done directly with the backend's own client library, with none of
this project's code in the way), the runner measures both in the same run, alternately, and
reports the ratio; a :class:`Target` then says whether the figure is good enough.

Every measurement is bounded: ``RunContext.count`` operations at most, and loops stop early
once ``RunContext.expired()`` says the time limit of one run has passed.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


class BenchError(Exception):
    """A case could not do its work (a refused publish, a failed command)."""


@dataclass(frozen=True, slots=True)
class Options:
    """The harness's command-line options, as every case sees them."""

    quick: bool = False
    repeat: int = 5
    messages: int | None = None
    """Overrides the message count of throughput cases (not the memory or CLI cases)."""
    memory_messages: int = 200_000
    payload: str = "order"
    """The payloads' shape (see :mod:`bench.payloads`)."""
    time_limit: float = 60.0
    """Seconds one measurement may take before its loop stops early."""
    workdir: Path | None = None
    """Where each run's temporary directory is made; ``None`` uses the system's default."""


@dataclass(frozen=True, slots=True)
class RunContext:
    """One measurement: how much work to do, and a fresh, empty directory to do it in."""

    count: int
    workdir: Path
    options: Options
    deadline: float
    """``time.perf_counter()`` value after which a loop should stop and report what it did."""

    def expired(self) -> bool:
        return time.perf_counter() > self.deadline


@dataclass(frozen=True, slots=True)
class Sample:
    """What one measurement found: ``ops`` operations in ``seconds``.

    ``value`` replaces the figure the metric would compute from ``ops`` and ``seconds``, for
    measurements that are not a rate (memory growth, the median of several process runs).
    ``notes`` are shown under the table (RSS readings, which modules a command imported).
    """

    ops: int
    seconds: float
    value: float | None = None
    notes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Metric:
    """How a sample becomes a figure, its unit, and which direction is better."""

    unit: str
    higher_is_better: bool
    per_op_scale: float | None
    """``None``: ops per second; else seconds per op times this (1e6 gives microseconds)."""
    decimals: int = 0
    signed: bool = False
    """Show a sign (for changes, such as memory growth)."""

    def value(self, sample: Sample) -> float:
        if sample.value is not None:
            return sample.value
        if self.per_op_scale is None:
            return sample.ops / sample.seconds if sample.seconds > 0 else float("inf")
        return sample.seconds / max(sample.ops, 1) * self.per_op_scale

    def format(self, value: float) -> str:
        sign = "+" if self.signed else ""
        return f"{value:{sign},.{self.decimals}f}"


THROUGHPUT = Metric("msg/s", higher_is_better=True, per_op_scale=None)
LATENCY_US = Metric("µs/op", higher_is_better=False, per_op_scale=1e6, decimals=1)
WALL_MS = Metric("ms", higher_is_better=False, per_op_scale=1e3)
MEMORY_MIB = Metric("MiB", higher_is_better=False, per_op_scale=None, decimals=1, signed=True)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A target checked against a figure: met or not (``None``: cannot tell), and why."""

    met: bool | None
    detail: str


class Target(ABC):
    """What a figure must reach. Subclasses say how; ``describe`` is the table's wording."""

    @abstractmethod
    def describe(self, metric: Metric) -> str: ...

    @abstractmethod
    def check(self, value: float, baseline: float | None) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class MinRatio(Target):
    """At least this fraction of the raw baseline's figure (for rates)."""

    ratio: float

    def describe(self, metric: Metric) -> str:
        return f">= {self.ratio:.0%} of raw"

    def check(self, value: float, baseline: float | None) -> Verdict:
        if baseline is None or baseline <= 0:
            return Verdict(None, "no baseline")
        ratio = value / baseline
        return Verdict(ratio >= self.ratio, f"{ratio:.0%} of raw")


@dataclass(frozen=True, slots=True)
class MaxExtra(Target):
    """At most this much more than the raw baseline, in the metric's unit (for costs)."""

    extra: float

    def describe(self, metric: Metric) -> str:
        return f"<= +{self.extra:g} {metric.unit} over raw"

    def check(self, value: float, baseline: float | None) -> Verdict:
        if baseline is None:
            return Verdict(None, "no baseline")
        extra = value - baseline
        return Verdict(extra <= self.extra, f"{extra:+.1f} over raw")


@dataclass(frozen=True, slots=True)
class MaxValue(Target):
    """At most this figure, in the metric's unit."""

    limit: float

    def describe(self, metric: Metric) -> str:
        return f"<= {self.limit:g} {metric.unit}"

    def check(self, value: float, baseline: float | None) -> Verdict:
        return Verdict(value <= self.limit, "")


Measure = Callable[[RunContext], Sample]
"""Does the work once, in ``RunContext.workdir``, and says how long it took."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """The same work without this project's code: what the figure is compared with."""

    name: str
    measure: Measure


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark: a backend's operation, measured ``count`` times per run.

    Attributes:
        backend: the queue type (``local``, ``sqs``, ...) or the part of the project measured.
        name: the operation, unique within the backend; ``backend/name`` selects it.
        description: one line for ``--list`` and the JSON output.
        metric: what the figure is (rate, cost per operation, wall time, memory).
        measure: does the work once and returns a sample.
        count: operations per run in a full run; ``quick_count`` with ``--quick``.
        baseline: the raw equivalent, measured alternately with the case in the same run.
        target: what the figure must reach.
        repeat: most runs this case makes, whatever ``--repeat`` says (long cases run once).
        warmup: operations of an untimed run made first (imports, caches, file creation).
        scalable: whether ``--messages`` overrides ``count``.
        requires: returns why the case cannot run here (an SDK or emulator missing), or
            ``None``; a case that cannot run is reported as skipped.
    """

    backend: str
    name: str
    description: str
    metric: Metric
    measure: Measure
    count: int
    quick_count: int
    baseline: Baseline | None = None
    target: Target | None = None
    repeat: int | None = None
    warmup: int = 0
    scalable: bool = True
    requires: Callable[[], str | None] | None = None

    @property
    def id(self) -> str:
        return f"{self.backend}/{self.name}"

    def count_for(self, options: Options) -> int:
        if self.scalable and options.messages is not None:
            return options.messages
        return self.quick_count if options.quick else self.count
