"""Finding the cases, running each a few times next to its baseline, and taking medians.

The machine a benchmark runs on is often shared and noisy, so a case is run ``--repeat`` times
and its median reported, with the spread, and a case and its raw baseline are run alternately
(baseline first on even runs, case first on odd ones) so that drift in the machine's load
touches both alike. Each run gets a fresh temporary directory, removed afterwards.
"""

from __future__ import annotations

import fnmatch
import gc
import importlib
import pkgutil
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bench import cases as cases_package
from bench.framework import Case, Measure, Options, RunContext, Sample, Verdict

DEFAULT_ORDER = 50


@dataclass(frozen=True, slots=True)
class Discovered:
    """The cases of every module in :mod:`bench.cases`, and the modules that failed to import."""

    cases: list[Case]
    broken: dict[str, str]


def discover() -> Discovered:
    """Import every module of :mod:`bench.cases` and collect its ``CASES``.

    Modules are ordered by their ``ORDER`` (default 50), then by name. A module that fails to
    import is reported, not fatal: a backend's SDK missing must not stop the others.
    """
    found: list[tuple[int, str, list[Case]]] = []
    broken: dict[str, str] = {}
    for info in pkgutil.iter_modules(cases_package.__path__):
        name = f"{cases_package.__name__}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            broken[name] = f"{type(exc).__name__}: {exc}"
            continue
        module_cases = list(getattr(module, "CASES", ()))
        found.append((int(getattr(module, "ORDER", DEFAULT_ORDER)), info.name, module_cases))
    found.sort(key=lambda item: (item[0], item[1]))
    return Discovered([case for _, _, module_cases in found for case in module_cases], broken)


def select(
    cases: Iterable[Case], backends: Sequence[str] = (), patterns: Sequence[str] = ()
) -> list[Case]:
    """Cases of the given backends whose ``name`` or ``backend/name`` matches a pattern.

    Patterns are shell-style (``publish-*``, ``local/consume*``); a pattern without wildcards
    matches as a substring. No backends or no patterns select everything.
    """

    def matches(case: Case, pattern: str) -> bool:
        if not any(ch in pattern for ch in "*?["):
            return pattern in case.id
        return fnmatch.fnmatchcase(case.name, pattern) or fnmatch.fnmatchcase(case.id, pattern)

    return [
        case
        for case in cases
        if (not backends or case.backend in backends)
        and (not patterns or any(matches(case, p) for p in patterns))
    ]


@dataclass
class Result:
    """Every run of one case and of its baseline, and the medians the report shows."""

    case: Case
    count: int
    runs: list[Sample] = field(default_factory=list)
    baseline_runs: list[Sample] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    """Why the case failed part-way (its figures are then left out)."""

    def _values(self, samples: Sequence[Sample]) -> list[float]:
        return [self.case.metric.value(s) for s in samples]

    @property
    def values(self) -> list[float]:
        return self._values(self.runs)

    @property
    def baseline_values(self) -> list[float]:
        return self._values(self.baseline_runs)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.runs else None

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline_values) if self.baseline_runs else None

    @property
    def spread(self) -> float | None:
        """(max - min) / median of the case's runs: how noisy the figure was."""
        values = self.values
        median = self.median
        if len(values) < 2 or not median:
            return None
        return (max(values) - min(values)) / abs(median)

    @property
    def ratio(self) -> float | None:
        """The case's median over the baseline's median."""
        if self.median is None or not self.baseline_median:
            return None
        return self.median / self.baseline_median

    @property
    def ops(self) -> int:
        """Operations in the median run (runs stopped by the time limit do fewer)."""
        return int(statistics.median(s.ops for s in self.runs)) if self.runs else 0

    @property
    def verdict(self) -> Verdict | None:
        if self.case.target is None or self.median is None:
            return None
        return self.case.target.check(self.median, self.baseline_median)

    @property
    def notes(self) -> dict[str, str]:
        """Notes of the last run (the memory readings, the import checks)."""
        return dict(self.runs[-1].notes) if self.runs else {}


def _measure_once(measure: Measure, count: int, options: Options) -> Sample:
    workdir = Path(tempfile.mkdtemp(prefix="conductor-events-bench-", dir=options.workdir))
    try:
        gc.collect()
        context = RunContext(
            count=count,
            workdir=workdir,
            options=options,
            deadline=time.perf_counter() + options.time_limit,
        )
        return measure(context)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_case(case: Case, options: Options, progress: Callable[[str], None] | None = None) -> Result:
    """Warm up, then run the case and its baseline alternately ``repeat`` times."""
    count = case.count_for(options)
    result = Result(case, count)
    reason = case.requires() if case.requires is not None else None
    if reason is not None:
        result.skipped = reason
        return result
    say = progress or (lambda _line: None)
    repeats = max(1, options.repeat if case.repeat is None else min(case.repeat, options.repeat))
    if case.warmup:
        warm = min(case.warmup, count)
        if case.baseline is not None:
            _measure_once(case.baseline.measure, warm, options)
        _measure_once(case.measure, warm, options)
    for index in range(repeats):
        order: list[tuple[Measure, list[Sample], str]] = [(case.measure, result.runs, "case")]
        if case.baseline is not None:
            entry = (case.baseline.measure, result.baseline_runs, "raw")
            order = [entry, *order] if index % 2 == 0 else [*order, entry]
        for measure, samples, label in order:
            sample = _measure_once(measure, count, options)
            samples.append(sample)
            figure = case.metric.format(case.metric.value(sample))
            say(f"{case.id}: run {index + 1}/{repeats} {label}: {figure} {case.metric.unit}")
    return result


def run_all(cases: Sequence[Case], options: Options, stream: TextIO | None = None) -> list[Result]:
    """Run every case in turn, reporting progress on ``stream`` (standard error by default).

    A case that raises is reported as failed, with the error, and the others still run.
    """
    out = stream or sys.stderr

    def progress(line: str) -> None:
        print(f"  {line}", file=out, flush=True)

    results = []
    for case in cases:
        print(f"{case.id}: {case.description}", file=out, flush=True)
        try:
            result = run_case(case, options, progress)
        except Exception as exc:  # one broken case must not lose the others' figures
            result = Result(case, case.count_for(options), error=f"{type(exc).__name__}: {exc}")
            print(f"  failed: {result.error}", file=out, flush=True)
        if result.skipped:
            print(f"  skipped: {result.skipped}", file=out, flush=True)
        results.append(result)
    return results
