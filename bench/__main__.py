"""``python -m bench``: run the benchmark cases and print the table (or ``--json``).

Examples::

    python -m bench                       # every case, median of 5 runs (a few minutes)
    python -m bench --quick               # small counts, one run each: a smoke test
    python -m bench --backend local --case 'publish-*'
    python -m bench --case consume --repeat 9
    python -m bench --case memory-flat --memory-messages 1000000
    python -m bench --list
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.framework import Options
from bench.payloads import SHAPES
from bench.report import as_json, table
from bench.runner import discover, run_all, select


def _positive_int(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of conductor-events next to raw client-library baselines.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts and one run per case (smoke test)"
    )
    parser.add_argument(
        "-b",
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help="only this backend's cases (repeatable): local, cli, ...",
    )
    parser.add_argument(
        "-k",
        "--case",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only cases whose name or backend/name matches (repeatable; shell wildcards, "
        "else substring)",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=None,
        metavar="N",
        help="runs per case; the median is reported (default 5, 1 with --quick)",
    )
    parser.add_argument(
        "--messages",
        type=_positive_int,
        default=None,
        metavar="N",
        help="messages per run for the throughput cases (overrides their defaults)",
    )
    parser.add_argument(
        "--memory-messages",
        type=_positive_int,
        default=None,
        metavar="N",
        help="messages the memory case consumes (default 200000, 20000 with --quick; "
        "1000000 for the full check)",
    )
    parser.add_argument(
        "--payload",
        choices=SHAPES,
        default="order",
        help="shape of the 1 KiB JSON payloads: an order event (default) or one long string",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="longest one measurement may run before it stops early (default 60)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where temporary queue files go (default: the system's temporary directory)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Library code logs through structlog; keep its debug lines out of the measurements.
    from conductor_events.logging import configure_logging

    configure_logging("warning", "console", stream=sys.stderr)

    discovered = discover()
    for module, error in discovered.broken.items():
        print(f"warning: case module {module} failed to import: {error}", file=sys.stderr)
    cases = select(discovered.cases, args.backend, args.case)
    if args.list:
        for case in cases:
            baseline = f" (vs {case.baseline.name})" if case.baseline else ""
            print(f"{case.id:32} {case.description}{baseline}")
        return 0
    if not cases:
        print("no case matches the filters; see --list", file=sys.stderr)
        return 2
    memory_messages = args.memory_messages or (20_000 if args.quick else 200_000)
    options = Options(
        quick=args.quick,
        repeat=args.repeat or (1 if args.quick else 5),
        messages=args.messages,
        memory_messages=memory_messages,
        payload=args.payload,
        time_limit=args.time_limit,
        workdir=args.workdir,
    )
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
    results = run_all(cases, options)
    print(as_json(results, options) if args.json else table(results, options))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
