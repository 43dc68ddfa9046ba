"""Memory stays flat while consuming: RSS read at the start, middle and end of a long consume.

The measurement runs in a fresh interpreter (``python -m bench.cases.memory DIR COUNT SHAPE``)
so that what the other cases allocated does not blur the readings. It publishes ``COUNT``
1 KiB messages in batches (generated batch by batch, so the producer holds little), then
receives and acks every one, reading the resident set size (``VmRSS``) once the queue is
filled (``before``), after the first 1% of the messages (``start``: the subscription, the
first deliveries and SQLite's page cache are then in place), at the half-way point and at the
end. The figure is the growth from start to end;
a leak of even 20 bytes per message would show as several MiB over the default 200,000.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.framework import MEMORY_MIB, BenchError, Case, MaxValue, RunContext, Sample
from bench.local_queue import SINK, open_queues, prefill
from conductor_events.backend import SubscribeOptions
from conductor_events.local.client import LocalQueueClient

ORDER = 30
MIB = 1024 * 1024
FLAT_MIB = 8.0
"""Most growth from start to end that still counts as flat."""


def _proc_status(field: str) -> int | None:
    """A ``/proc/self/status`` size in bytes (Linux), or ``None``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_bytes() -> int:
    peak = _proc_status("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def rss_bytes() -> int:
    """The current resident set size; the peak where ``/proc`` is not there (not Linux)."""
    current = _proc_status("VmRSS")
    return current if current is not None else _peak_bytes()


async def consume_and_read_rss(workdir: Path, count: int, shape: str) -> dict[str, float]:
    """Prefill, then consume ``count`` messages; RSS readings in bytes, and timings."""
    options = SubscribeOptions(max_in_flight=100, prefetch=100)
    readings: dict[str, float] = {}
    async with open_queues(workdir) as queues:
        started = time.perf_counter()
        await prefill(queues, count, shape=shape)
        readings["prefill_seconds"] = time.perf_counter() - started
        readings["before"] = rss_bytes()
        start_at, middle_at = max(1, count // 100), count // 2
        started = time.perf_counter()
        async with await queues.subscribe(SINK, options) as subscription:
            for done in range(1, count + 1):
                delivery = await subscription.receive(timeout=10.0)
                if delivery is None:
                    raise BenchError(f"queue ran dry after {done - 1} of {count} messages")
                await delivery.ack()
                if done == start_at:
                    readings["start"] = rss_bytes()
                elif done == middle_at:
                    readings["middle"] = rss_bytes()
        readings["end"] = rss_bytes()
        readings["consume_seconds"] = time.perf_counter() - started
        resolved = queues.resolve(SINK)
        if isinstance(resolved.client, LocalQueueClient):
            readings["left"] = await resolved.client.depth(resolved.location)
    # VmHWM is updated lazily and can lag VmRSS by a page or two; never report it below them.
    readings["peak"] = max(_peak_bytes(), readings["start"], readings["middle"], readings["end"])
    return readings


def _measure(ctx: RunContext) -> Sample:
    count = ctx.options.memory_messages
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    remaining = max(ctx.deadline - time.perf_counter(), 1.0)
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.cases.memory",
                str(ctx.workdir),
                str(count),
                ctx.options.payload,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=max(remaining, count / 2_000),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"memory run did not finish in {exc.timeout:.0f}s") from None
    if completed.returncode != 0:
        raise BenchError(f"memory run failed:\n{completed.stderr.strip()}")
    readings = json.loads(completed.stdout.strip().splitlines()[-1])
    growth = (readings["end"] - readings["start"]) / MIB
    notes = {
        "RSS before / start / middle / end": " / ".join(
            f"{readings[k] / MIB:.1f}" for k in ("before", "start", "middle", "end")
        )
        + f" MiB (peak {readings['peak'] / MIB:.1f} MiB)",
        "messages": f"{count:,} prefilled in {readings['prefill_seconds']:.1f}s, consumed and "
        f"acked in {readings['consume_seconds']:.1f}s "
        f"({count / readings['consume_seconds']:,.0f} msg/s); "
        f"{readings.get('left', 0):.0f} left in the queue",
        "runs": "1 (a fresh interpreter; raise the count with --memory-messages)",
    }
    return Sample(count, readings["consume_seconds"], value=growth, notes=notes)


CASES = [
    Case(
        backend="local",
        name="memory-flat",
        description="RSS growth while consuming and acking --memory-messages messages",
        metric=MEMORY_MIB,
        measure=_measure,
        count=1,
        quick_count=1,
        target=MaxValue(FLAT_MIB),
        repeat=1,
        scalable=False,
    ),
]


if __name__ == "__main__":
    from conductor_events.logging import configure_logging

    configure_logging("warning", "console", stream=sys.stderr)
    workdir, count, shape = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(consume_and_read_rss(workdir, count, shape))))
