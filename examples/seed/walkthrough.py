"""The main job, end to end, on one machine: ``conductor-events serve`` on the ``local`` queue
with the seed's handler, an EVENT task published, and the handler's action delivered to a
Conductor server.

``python examples/seed/walkthrough.py`` starts the Conductor API double (a process of its own)
as the server; ``--conductor-url http://host:8080/api`` uses a real Conductor server instead,
which must have a workflow named ``doug`` whose first task's reference name is ``task_1_ref``.

Steps: start a ``doug`` workflow; start ``serve``; publish the EVENT task with
``conductor-events publish`` (as the workflow's EVENT task would); wait until the handler has
completed ``task_1_ref``; stop ``serve`` with SIGTERM. Exit 0 when all of it happened.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SEED = Path(__file__).resolve().parent / "handler.json"
EVENT = "local:conductor_doug_testing"


def _request(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "conductor_events", *args]


def _wait_for_log(path: Path, event: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if f'"event": "{event}"' in line:
                return
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}:\n{path.read_text()}")
        time.sleep(0.05)
    raise SystemExit(f"serve did not log {event} within {timeout:g}s:\n{path.read_text()}")


def run(conductor_url: str | None, workdir: Path) -> int:
    double: subprocess.Popen[str] | None = None
    serve: subprocess.Popen[bytes] | None = None
    try:
        if conductor_url is None:
            double = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "conductor_events_handlers.testing.conductor_double",
                    "--workflow",
                    "doug=task_1_ref,task_2_ref",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert double.stdout is not None
            conductor_url = double.stdout.readline().strip()
            print(f"== Conductor API double at {conductor_url}")
        workflow_id = _request("POST", f"{conductor_url}/workflow", {"name": "doug"})
        print(f"== workflow doug started: {workflow_id}")

        properties = workdir / "app.properties"
        properties.write_text(
            f"conductor.server.url={conductor_url}\n"
            f"conductor.event-queues.local.path={workdir / 'queue.db'}\n"
            f"conductor.event-handlers.executions.path={workdir / 'executions.db'}\n"
        )
        log = workdir / "serve.log"
        with log.open("wb") as log_file:
            serve = subprocess.Popen(
                _cli(
                    "--log-level",
                    "info",
                    "--log-format",
                    "json",
                    "serve",
                    "-c",
                    str(properties),
                    "--handlers",
                    str(SEED),
                ),
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        _wait_for_log(log, "serve.listener.connected", serve, 30)
        print(f"== conductor-events serve is listening on {EVENT} with {SEED.name}")

        print(f"== EVENT task: publish to {EVENT}")
        published = subprocess.run(
            _cli(
                "-c",
                str(properties),
                "publish",
                EVENT,
                "--input",
                '{"myKey": "myValue", "myNumber": 100}',
                "--workflow-type",
                "doug",
                "--workflow-version",
                "1",
                "--workflow-id",
                workflow_id,
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        print(published.stdout.rstrip())
        if published.returncode != 0:
            print(published.stderr, file=sys.stderr)
            return 1

        deadline = time.monotonic() + 30
        task: dict[str, Any] = {}
        while time.monotonic() < deadline:
            workflow = _request("GET", f"{conductor_url}/workflow/{workflow_id}")
            task = next(t for t in workflow["tasks"] if t["referenceTaskName"] == "task_1_ref")
            if task["status"] == "COMPLETED":
                break
            time.sleep(0.1)
        print(f"== in Conductor: task_1_ref is {task.get('status')}, output:")
        print(json.dumps(task.get("outputData"), indent=2))
        if task.get("status") != "COMPLETED":
            print(log.read_text(), file=sys.stderr)
            return 1

        serve.send_signal(signal.SIGTERM)
        code = serve.wait(30)
        print(f"== serve stopped on SIGTERM with exit status {code}")
        return 0 if code == 0 else 1
    finally:
        for proc in (serve, double):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if double is not None and double.stdout is not None:
            double.stdout.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--conductor-url",
        help="a real Conductor server's API URL (default: start the Conductor API double)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conductor-events-demo-") as workdir:
        sys.exit(run(args.conductor_url, Path(workdir)))


if __name__ == "__main__":
    main()
