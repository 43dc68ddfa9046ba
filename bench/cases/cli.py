"""Start-up time of the ``conductor-events`` command, next to ``python -c pass``.

Each run starts the command ``count`` times as a new process and takes the median wall time;
the baseline starts the bare interpreter the same way, so the difference is what the
command's imports and work cost. The runs use ``CONDUCTOR_EVENTS_PLUGINS=local`` (only the
built-in plugin loads) and no configuration files. Target: under 250 ms each.

Each run also starts the command once more in an interpreter that reports, after the command
finished, whether any broker SDK (boto3, botocore, aiokafka, azure) was imported: once with
the allow-list, once with every installed plugin loaded. Plugins must import their SDK only
when a queue of their type is first used; the tests assert that, this only reports it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.framework import (
    WALL_MS,
    Baseline,
    BenchError,
    Case,
    MaxValue,
    Measure,
    RunContext,
    Sample,
)

ORDER = 90
LIMIT_MS = 250.0
SDK_ROOTS = ("aiobotocore", "aiokafka", "azure", "boto3", "botocore", "kafka")

_PROBE = """
import json, sys
out, sys.argv = sys.argv[1], ["conductor-events", *sys.argv[2:]]
code = 0
try:
    from conductor_events.cli import main
    main()
except SystemExit as exc:
    code = exc.code
roots = set(%r)
found = sorted(m for m in sys.modules if m.partition(".")[0] in roots)
with open(out, "w") as f:
    json.dump({"code": code, "modules": found}, f)
"""


def command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m``."""
    script = shutil.which("conductor-events", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "conductor_events"]


def _environ(workdir: Path, *, allow_local_only: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env["CONDUCTOR_EVENTQUEUES_LOCAL_PATH"] = str(workdir / "queue.db")
    if allow_local_only:
        env["CONDUCTOR_EVENTS_PLUGINS"] = "local"
    return env


def _wall_ms(argv: Sequence[str], env: dict[str, str], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        completed = subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        times.append((time.perf_counter() - start) * 1e3)
        if completed.returncode != 0:
            stderr = completed.stderr.decode(errors="replace").strip()
            raise BenchError(f"{' '.join(argv)} exited {completed.returncode}: {stderr}")
    return times


def _sdk_modules(args: Sequence[str], env: dict[str, str], workdir: Path) -> str:
    out = workdir / "probe.json"
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE % (SDK_ROOTS,), str(out), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if completed.returncode != 0 or not out.exists():
        raise BenchError(f"import probe failed: {completed.stderr.decode(errors='replace')}")
    report = json.loads(out.read_text())
    if report["code"] not in (0, None):
        raise BenchError(f"conductor-events {' '.join(args)} exited {report['code']}")
    modules: list[str] = report["modules"]
    return ", ".join(modules) if modules else "none"


def _run_command(args: Sequence[str]) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        times = _wall_ms([*command(), *args], _environ(ctx.workdir), ctx.count)
        notes = {
            "SDK modules imported (CONDUCTOR_EVENTS_PLUGINS=local)": _sdk_modules(
                args, _environ(ctx.workdir), ctx.workdir
            ),
            "SDK modules imported (every installed plugin)": _sdk_modules(
                args, _environ(ctx.workdir, allow_local_only=False), ctx.workdir
            ),
            "runs": f"median of {ctx.count} process starts per run",
        }
        return Sample(len(times), sum(times) / 1e3, value=statistics.median(times), notes=notes)

    return measure


def _bare_interpreter(ctx: RunContext) -> Sample:
    times = _wall_ms([sys.executable, "-c", "pass"], _environ(ctx.workdir), ctx.count)
    return Sample(len(times), sum(times) / 1e3, value=statistics.median(times))


CASES = [
    Case(
        backend="cli",
        name=" ".join(["conductor-events", *args]),
        description=f"wall time of `conductor-events {' '.join(args)}`, a new process each",
        metric=WALL_MS,
        measure=_run_command(args),
        count=7,
        quick_count=3,
        baseline=Baseline("python -c pass", _bare_interpreter),
        target=MaxValue(LIMIT_MS),
        warmup=1,
        scalable=False,
    )
    for args in (["--help"], ["plugins", "--json"], ["config", "check"])
]
