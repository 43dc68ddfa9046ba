"""The results as a table for people, or as JSON for tools."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Sequence
from typing import Any

from bench.framework import THROUGHPUT, Options
from bench.runner import Result


def _figure(result: Result, value: float | None) -> str:
    if value is None:
        return "-"
    metric = result.case.metric
    return f"{metric.format(value)} {metric.unit}"


def cost_per_message(result: Result) -> str | None:
    """A rate turned into microseconds per message, next to the baseline's: the layer's cost."""
    if result.case.metric is not THROUGHPUT or not result.median or not result.baseline_median:
        return None
    ours, raw = 1e6 / result.median, 1e6 / result.baseline_median
    return f"{ours:.1f} µs per message, raw {raw:.1f} µs ({ours - raw:+.1f} µs)"


def table(results: Sequence[Result], options: Options) -> str:
    """A plain-text table: one row per case, its baseline and ratio, and the target's verdict."""
    header = (
        "backend",
        "case",
        "count",
        "result",
        "raw baseline",
        "vs raw",
        "spread",
        "target",
        "met",
    )
    rows: list[tuple[str, ...]] = [header]
    for r in results:
        case = r.case
        if r.skipped or r.error:
            status = "skipped" if r.skipped else "FAILED"
            rows.append((case.backend, case.name, "-", status, "-", "-", "-", "-", "-"))
            continue
        verdict = r.verdict
        if verdict is None or verdict.met is None:
            met = "-"
        else:
            met = "yes" if verdict.met else "NO"
            if verdict.detail:
                met += f" ({verdict.detail})"
        rows.append(
            (
                case.backend,
                case.name,
                f"{r.ops:,}",
                _figure(r, r.median),
                _figure(r, r.baseline_median),
                f"{r.ratio:.2f}x" if r.ratio is not None else "-",
                f"{r.spread:.0%}" if r.spread is not None else "-",
                case.target.describe(case.metric) if case.target is not None else "-",
                met,
            )
        )
    right = {2, 3, 4, 5, 6}
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in right and n else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    repeats = "1 run" if options.repeat == 1 else f"median of up to {options.repeat} runs"
    lines.append("")
    lines.append(
        f"{repeats} per figure (cases marked in their notes run once); spread = "
        "(max - min) / median over the runs; 'vs raw' = result / raw baseline."
    )
    verdicts = [r.verdict for r in results]
    met_count = sum(1 for v in verdicts if v is not None and v.met)
    missed = sum(1 for v in verdicts if v is not None and v.met is False)
    failed = sum(1 for r in results if r.error)
    lines.append(f"targets: {met_count} met, {missed} missed; {failed} case(s) failed")
    for r in results:
        if r.skipped or r.error:
            lines.append(f"{r.case.id}: {r.skipped or r.error}")
            continue
        if r.case.baseline is None and not r.notes:
            continue
        lines.append(f"{r.case.id}:")
        if r.case.baseline is not None:
            lines.append(f"  raw baseline: {r.case.baseline.name}")
        cost = cost_per_message(r)
        if cost is not None:
            lines.append(f"  cost: {cost}")
        for key, value in r.notes.items():
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def as_json(results: Sequence[Result], options: Options) -> str:
    """Every figure, every run, and the environment, as one JSON document."""

    def one(r: Result) -> dict[str, Any]:
        case = r.case
        verdict = r.verdict
        return {
            "backend": case.backend,
            "case": case.name,
            "description": case.description,
            "unit": case.metric.unit,
            "count": r.ops,
            "skipped": r.skipped,
            "error": r.error,
            "median": r.median,
            "runs": r.values,
            "spread": r.spread,
            "baseline": None
            if case.baseline is None
            else {
                "name": case.baseline.name,
                "median": r.baseline_median,
                "runs": r.baseline_values,
            },
            "ratio": r.ratio,
            "cost_per_message": cost_per_message(r),
            "target": None if case.target is None else case.target.describe(case.metric),
            "met": None if verdict is None else verdict.met,
            "notes": r.notes,
        }

    document = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "options": {
            "quick": options.quick,
            "repeat": options.repeat,
            "messages": options.messages,
            "memory_messages": options.memory_messages,
            "payload": options.payload,
            "time_limit": options.time_limit,
        },
        "results": [one(r) for r in results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
